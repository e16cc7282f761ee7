"""``faceprint library add / people / faces / waiting / photos / who / name / merge / split / move / reject / hide /
dismiss / calibrate``: a thin layer over :mod:`faceprint.people`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import console, model_spec, report_skipped

__all__ = ["library_app"]

library_app = typer.Typer(help="A photo library: faces grouped into people as photos arrive; name and correct them.",
                          no_args_is_help=True)
Lib = Annotated[Path, typer.Argument(help="Library folder (a face index with people).")]
FaceIds = Annotated[list[int], typer.Argument(help="Face ids (see `library faces` / `library waiting`).")]


def _open(lib: Path):  # type: ignore[no-untyped-def]
    from faceprint.people import open_library

    return open_library(lib)


@library_app.command("add")
def add_cmd(
    lib: Lib,
    photos: Annotated[list[Path], typer.Argument(help="Photos or folders of photos (searched recursively).")],
    weights: Annotated[Optional[str], typer.Option(help="Model of a new library (default casia-webface).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint of a new library's model.")] = None,
    detect: Annotated[Optional[bool], typer.Option("--detect/--no-detect", help="Detect faces (default: as the model expects).")] = None,
    min_faces: Annotated[Optional[int], typer.Option(min=1, help="Waiting faces needed to found a new person (default 3).")] = None,
    backend: Annotated[str, typer.Option(help="Inference backend of a new library: torch, channels_last or onnx.")] = "torch",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes detecting and embedding folders (the bulk runner; "
                       "1: one process).")] = 1,
    engine: Annotated[str, typer.Option(help="local, or ray (a Ray cluster: pip install 'faceprint[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="With --engine ray: the cluster (default: start one here).")] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="Photos per shard of the bulk runner.")] = 256,
) -> None:
    """Add photos: every face is detected, embedded and given to a person (or waits); photos already in the library
    (same content) are skipped, so a rerun resumes where a stopped one ended."""
    from dataclasses import replace

    from faceprint.bulk import Runner
    from faceprint.cli.index import _progress
    from faceprint.people import PeopleConfig, open_library
    from faceprint.search import gallery_images

    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine must be local or ray")
    runner = Runner(engine, workers, shard_size, ray_address)
    paths = []
    for src in photos:
        found = [p for p, _ in gallery_images(src)]
        if not found:
            raise typer.BadParameter(f"no images at {src}")
        paths += found
    new = not (lib / "faces.sqlite").is_file()
    spec = model_spec(weights, checkpoint, backend) if new else None
    library = open_library(lib, spec, detect=detect, config=PeopleConfig(min_faces=min_faces) if new and min_faces else None)
    if min_faces is not None and not new:  # for this add only; a new library keeps it
        library.config = replace(library.config, min_faces=min_faces)
    try:
        with _progress("add") as progress:
            task = progress.add_task("add", total=len(paths))
            report = library.add_photos(paths, progress=lambda d, t: progress.update(task, completed=d, total=t),
                                        runner=runner)
        report_skipped([f"{p['path']}: {p['issue']} ({p['detail']})" for p in report.problems], limit=20, more="more")
        stats = library.stats()
    finally:
        library.close()
    console.print(f"added {report.photos} photos ({report.already} already there) with {report.faces} faces: "
                  f"{report.joined} joined people, {report.founded} new people, {report.retried} waiting faces placed; "
                  f"library: {stats['people']} people ({stats['named']} named), {stats['waiting']} faces waiting")


@library_app.command("people")
def people_cmd(lib: Lib, hidden: Annotated[bool, typer.Option(help="Include hidden people.")] = False,
               json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The people: named ones first, then unnamed ones with the most faces."""
    from dataclasses import asdict

    from rich.table import Table

    library = _open(lib)
    try:
        people = library.people(hidden)
    finally:
        library.close()
    if json_out:
        print(json.dumps([asdict(p) for p in people], indent=2))
        return
    table = Table(title=f"{len(people)} people")
    for col in ("id", "name", "faces", "hidden"):
        table.add_column(col)
    for p in people:
        table.add_row(str(p.id), p.name or "—", str(p.faces), "yes" if p.hidden else "")
    console.print(table)


def _faces_table(title: str, faces) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=title)
    for col in ("face", "photo", "person", "how", "box"):
        table.add_column(col)
    for f in faces:
        table.add_row(str(f.id), str(f.photo_id), f.person_name or (str(f.person_id) if f.person_id else "—"), f.how,
                      str(f.box or ""))
    console.print(table)


@library_app.command("faces")
def faces_cmd(lib: Lib, person: Annotated[int, typer.Argument(help="Person id.")]) -> None:
    """A person's faces (ids to split, move or reject)."""
    library = _open(lib)
    try:
        _faces_table(f"person #{library.resolve(person)}", library.faces_of(person))
    finally:
        library.close()


@library_app.command("waiting")
def waiting_cmd(lib: Lib) -> None:
    """Faces with no person, in groups of likely one person each (name a group with `library split --name`)."""
    library = _open(lib)
    try:
        for i, group in enumerate(library.waiting_groups(), 1):
            _faces_table(f"group {i}: {len(group)} faces", group)
    finally:
        library.close()


@library_app.command("photos")
def photos_cmd(lib: Lib, people: Annotated[list[int], typer.Argument(help="Person ids: photos with all of them.")]) -> None:
    """Photos in which all the given people are."""
    library = _open(lib)
    try:
        for photo in library.photos_with(people):
            names = ", ".join(f.person_name or f"#{f.person_id}" for f in photo.faces if f.person_id)
            console.print(f"#{photo.id} {photo.path} {photo.taken_at or ''} — {names}", highlight=False)
    finally:
        library.close()


@library_app.command("suggest")
def suggest_cmd(lib: Lib, person: Annotated[int, typer.Argument(help="Person id.")],
                n: Annotated[int, typer.Option(min=1, help="How many.")] = 5) -> None:
    """People who may be the same as PERSON (merge candidates), most similar first."""
    library = _open(lib)
    try:
        for q, sim, d in library.suggestions(person, n):
            console.print(f"#{q.id} {q.name or 'unnamed'} ({q.faces} faces): similarity {sim:.2f} (distance {d:.3f})",
                          highlight=False)
    finally:
        library.close()


@library_app.command("who")
def who_cmd(lib: Lib, image: Annotated[Path, typer.Argument(help="A photo.")]) -> None:
    """Who is in a photo (not added to the library)."""
    library = _open(lib)
    try:
        for face in library.who_is_in(image):
            who = face["name"] or (f"person #{face['person']}" if face["person"] else "nobody in the library")
            console.print(f"{face['box']}: {who} (similarity {face['similarity']:.2f})")
    finally:
        library.close()


def _edit(lib: Path, what: str, *args):  # type: ignore[no-untyped-def]
    library = _open(lib)
    try:
        return getattr(library, what)(*args)
    finally:
        library.close()


@library_app.command("name")
def name_cmd(lib: Lib, person: Annotated[int, typer.Argument(help="Person id.")], name: Annotated[str, typer.Argument()]) -> None:
    """Name or rename a person."""
    console.print(f"person #{_edit(lib, 'name', person, name)} is {name.strip()}")


@library_app.command("merge")
def merge_cmd(lib: Lib, target: Annotated[int, typer.Argument(help="Person to keep.")],
              sources: Annotated[list[int], typer.Argument(help="People merged into it.")]) -> None:
    """Merge people into one (their ids lead to the target from now on)."""
    console.print(f"moved {_edit(lib, 'merge', target, sources)} faces into person #{target}")


@library_app.command("split")
def split_cmd(lib: Lib, faces: FaceIds, name: Annotated[Optional[str], typer.Option(help="Name of the new person.")] = None) -> None:
    """Make faces a new person (or, with --name of an existing person, give them to that person)."""
    pid = _edit(lib, "name_faces", faces, name) if name else _edit(lib, "split", faces)
    console.print(f"person #{pid} now has these faces (any rejected from that person stayed out)" if name else
                  f"{len(faces)} faces are person #{pid}")


@library_app.command("move")
def move_cmd(lib: Lib, faces: FaceIds, to: Annotated[int, typer.Option(help="Person id they belong to.")]) -> None:
    """Move faces to a person."""
    console.print(f"{len(faces)} faces moved to person #{_edit(lib, 'move', faces, to)}")


@library_app.command("reject")
def reject_cmd(lib: Lib, faces: FaceIds) -> None:
    """"Not this person": the faces leave their person and never go back to them."""
    console.print(f"{_edit(lib, 'reject', faces)} faces taken from their person")


@library_app.command("hide")
def hide_cmd(lib: Lib, person: Annotated[int, typer.Argument(help="Person id.")],
             show: Annotated[bool, typer.Option(help="Show a hidden person again.")] = False) -> None:
    """Hide a person from the people list."""
    console.print(f"person #{_edit(lib, 'hide', person, not show)} {'shown' if show else 'hidden'}")


@library_app.command("dismiss")
def dismiss_cmd(lib: Lib, faces: FaceIds) -> None:
    """Detections that are not faces: removed (their photos stay, so they do not come back)."""
    console.print(f"{_edit(lib, 'dismiss', faces)} detections dismissed")


@library_app.command("calibrate")
def calibrate_cmd(lib: Lib, far: Annotated[float, typer.Option(help="False-accept rate of the threshold.")] = 1e-3) -> None:
    """Fit the threshold and the similarity score on the people you named."""
    out = _edit(lib, "calibrate", far)
    sim = out["similarity"]
    console.print(f"search threshold {out['threshold']:.3f} (FAR {far:g}); people threshold {out['people_threshold']:.3f}; similarity c0 {sim['c0']:.4f} c1 {sim['c1']:.4f} "
                  f"from {out['faces']} faces of {out['people']} named people")
