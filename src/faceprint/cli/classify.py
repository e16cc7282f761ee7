"""``faceprint classify fit`` / ``predict``: known identities with an open-set "unknown" answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import ALIGN_HELP, console, err_console, model_spec, path_embedder, report_skipped, write_json

__all__ = ["classify_app"]

classify_app = typer.Typer(help="Classify faces among known identities (or answer 'unknown').", no_args_is_help=True)


@classify_app.command("fit")
def fit_cmd(
    data: Annotated[Path, typer.Argument(help="Identity folder: DATA/<identity>/<image>.")],
    out: Annotated[Path, typer.Option(help="Classifier file to write.")] = Path("classifier.safetensors"),
    weights: Annotated[Optional[str], typer.Option(help="Pretrained weights name in the cache, or their folder.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run folder.")] = None,
    method: Annotated[str, typer.Option(help="centroid, softmax or svm.")] = "centroid",
    accept: Annotated[float, typer.Option(help="Fraction of known faces to accept when calibrating 'unknown'.")] = 0.95,
    backend: Annotated[str, typer.Option(help="Inference backend: torch, channels_last or onnx.")] = "torch",
    align: Annotated[str, typer.Option(help=ALIGN_HELP)] = "auto",
) -> None:
    """Embed every image of DATA (one face each) and fit a classifier over its identities."""
    from rich.progress import Progress

    from faceprint.classify import FaceClassifier
    from faceprint.data.folder import scan_identity_folder
    from faceprint.models import Embedder

    spec = model_spec(weights, checkpoint, backend)
    embedder = Embedder.from_spec(spec)
    faces = path_embedder(embedder, align)
    folder = scan_identity_folder(data, min_images=1)
    report_skipped([f"{s.path}: {s.reason}" for s in folder.skipped])
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("embedding", total=len(folder))
        emb, ok, failed = faces.embed_paths(folder.paths, on_batch=lambda n: progress.update(task, completed=n))
    report_skipped([reason for _, reason in failed], limit=None)
    label_of = dict(zip(folder.paths, (folder.classes[i] for i in folder.labels)))
    clf = FaceClassifier.fit(emb, [label_of[p] for p in ok], method, accept,
                             embedder={**spec, "weights": embedder.name if "+" in str(spec.get("weights")) else
                                       spec.get("weights"), "image_size": embedder.image_size, "align": align})
    clf.save(out)
    console.print(f"wrote {out}: {method} over {len(clf.labels)} identities from {len(ok)} images; "
                  f"unknown below score {clf.threshold:.4f} (accepts {accept:.0%} of known faces)")


@classify_app.command("predict")
def predict_cmd(
    images: Annotated[list[Path], typer.Argument(help="Images to classify.")],
    classifier: Annotated[Path, typer.Option(help="File written by `classify fit`.")] = Path("classifier.safetensors"),
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the predictions here.")] = None,
) -> None:
    """Print the identity (or 'unknown') and score of each image."""
    from rich.table import Table

    from faceprint.classify import FaceClassifier
    from faceprint.models import Embedder

    clf = FaceClassifier.load(classifier)
    faces = path_embedder(Embedder.from_spec(clf.embedder), clf.embedder.get("align", "none"))
    emb, ok, failed = faces.embed_paths(images)
    report_skipped([reason for _, reason in failed], limit=None)
    preds = clf.predict(emb) if ok else []
    table = Table(title=f"{clf.method} classifier, unknown below {clf.threshold:.4f}")
    for col in ("image", "identity", "score", "closest known"):
        table.add_column(col)
    for path, p in zip(ok, preds):
        table.add_row(str(path), p.label, f"{p.score:.4f}", p.best)
    console.print(table)
    write_json(json_path, [{"path": str(path), "label": p.label, "score": p.score, "closest": p.best}
                           for path, p in zip(ok, preds)])
