"""``faceprint align``: detect and crop faces of a whole identity-folder tree."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import console, err_console

__all__ = ["align_cmd"]


def align_cmd(
    src: Annotated[Path, typer.Argument(help="Source tree (root/<identity>/<image>).")],
    dst: Annotated[Path, typer.Argument(help="Output tree, same layout, PNG crops.")],
    image_size: Annotated[int, typer.Option(help="Output side in pixels.")] = 160,
    margin: Annotated[float, typer.Option(help="Margin in output pixels (margin mode).")] = 32,
    mode: Annotated[str, typer.Option(help="margin (facenet-pytorch box crop) or similarity (5-point alignment).")] = "margin",
    policy: Annotated[str, typer.Option(help="Several faces: largest, center or skip.")] = "largest",
    batch_size: Annotated[int, typer.Option(help="Images per detector batch.")] = 8,
    min_face: Annotated[float, typer.Option(help="Smallest face searched for, in pixels (larger is faster).")] = 20.0,
    weights: Annotated[Optional[Path], typer.Option(help="Folder with pnet.pt/rnet.pt/onet.pt (default: shipped).")] = None,
    engine: Annotated[str, typer.Option(help="local (this machine) or ray (a Ray cluster: pip install 'faceprint[ray]').")]
    = "local",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (local) or actors (ray), each with its own detector.")]
    = 1,
    shard_size: Annotated[int, typer.Option(min=1, help="Images per shard (the unit of resume and of work).")] = 256,
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: a local Ray on 127.0.0.1).")]
    = None,
) -> None:
    """Align a dataset; resumable (finished files are skipped), with a report of problem images."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from faceprint.align import MTCNN
    from faceprint.bulk.align import align_folder

    if mode not in ("margin", "similarity") or policy not in ("largest", "center", "skip"):
        raise typer.BadParameter("--mode must be margin|similarity and --policy largest|center|skip")
    if not src.is_dir():
        raise typer.BadParameter(f"{src} is not a folder")
    if min_face <= 0:
        raise typer.BadParameter("--min-face must be positive")
    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine must be local or ray")
    detector = MTCNN(weights, min_face_size=min_face) if engine == "local" and workers == 1 else None
    columns = (TextColumn("align"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task("align", total=None, rate="")
        t0 = time.perf_counter()

        def update(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-6)
            progress.update(task, completed=done, total=total, rate=f"{rate:.1f} img/s")

        report = align_folder(src, dst, detector, image_size, margin, mode, policy, batch_size, update,  # type: ignore[arg-type]
                              engine, workers, shard_size, ray_address, min_face, None if weights is None else str(weights))
    console.print(f"wrote {report.written} crops ({report.images_per_second():.1f} img/s), "
                  f"{report.skipped_existing} already done, {len(report.problems)} problems listed in {dst / 'align_report.csv'}")
