"""``faceprint sweep``: the seed-002 experiment table from one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import console

__all__ = ["sweep_cmd"]


def sweep_cmd(
    config: Annotated[Path, typer.Argument(help="TOML config; an optional [sweep] grid = {key = [values]} table.")],
    grid: Annotated[Optional[list[str]], typer.Option(help="key=v1,v2 (repeatable; over the file's grid). Keys: "
                                                      "backbone, batch, embedding_dim, lr, miner, margin, steps, "
                                                      "image_size or any section.key.")] = None,
    out: Annotated[Path, typer.Option(help="Sweep folder: one run folder per grid point, results.md/.csv, PNGs.")] = Path("runs/sweep"),
    data: Annotated[Optional[Path], typer.Option(help="Dataset (overrides data.root).")] = None,
) -> None:
    """Train every grid combination (sequentially, resumable) and write the results table."""
    from faceprint.config import apply_overrides
    from faceprint.sweep import load_sweep_config, parse_grid, run_sweep

    base, file_grid = load_sweep_config(config)
    if data is not None:
        base = apply_overrides(base, {"data.root": str(data)})
    full = {**file_grid, **parse_grid(grid or [])}
    if not full:
        raise typer.BadParameter("no grid: give --grid key=v1,v2 or a [sweep] table in the config")
    run_sweep(base, full, out, log=console.print)
    console.print((out / "results.md").read_text())
    console.print(f"table: {out / 'results.md'} and {out / 'results.csv'}; curves: {out}/*.png")
