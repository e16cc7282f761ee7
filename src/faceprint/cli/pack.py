"""``faceprint pack``: an aligned folder (or a RecordIO set) as memory-mapped shards, or as RecordIO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import err_console, report_skipped

__all__ = ["pack_cmd"]


def pack_cmd(
    source: Annotated[Path, typer.Argument(help="An aligned identity folder root/<identity>/<image>, a pack, or a "
                                           "RecordIO set (train.rec, or the folder holding it).")],
    out: Annotated[Path, typer.Argument(help="Output folder (a pack) or FILE.rec (with --format recordio).")],
    size: Annotated[Optional[int], typer.Option(help="Side of the stored images (default: the first image's own).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="pack (uint8 shards read by memory map) or recordio "
                                                       "(insightface's train.rec + train.idx).")] = "pack",
    shard_items: Annotated[int, typer.Option(help="Images per shard (a pack).")] = 4096,
    quality: Annotated[int, typer.Option(help="JPEG quality when RecordIO must re-encode.")] = 95,
) -> None:
    """Pack a dataset so that training never decodes or resizes what was already aligned. An interrupted pack
    resumes when rerun (RecordIO output is written whole, then moved into place)."""
    from rich.progress import Progress

    from faceprint.data.folder import DatasetError
    from faceprint.data.packed import write_pack
    from faceprint.data.sources import folder_to_recordio, item_side, open_dataset

    if fmt not in ("pack", "recordio"):
        raise typer.BadParameter(f"--format must be pack or recordio, not {fmt!r}")
    try:
        folder = open_dataset(source)
    except DatasetError as exc:
        raise typer.BadParameter(str(exc)) from None
    report_skipped([f"{s.path}: {s.reason}" for s in folder.skipped])
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("packing", total=len(folder))
        step = lambda n: progress.update(task, completed=n)  # noqa: E731
        try:
            if fmt == "pack":
                write_pack(out, folder, size or item_side(folder, 0), shard_items, on_item=step)
            else:
                if out.suffix != ".rec":
                    raise typer.BadParameter("--format recordio writes FILE.rec (and FILE.idx beside it)")
                if out.exists():
                    raise typer.BadParameter(f"{out} exists; remove it or choose another output")
                folder_to_recordio(folder, out, size, quality, on_item=step)
        except DatasetError as exc:
            raise typer.BadParameter(str(exc)) from None
    err_console.print(f"packed {len(folder)} images of {len(folder.classes)} identities into {out}")

