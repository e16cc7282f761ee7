"""Helpers shared by the CLI commands: console, error exits, JSON output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from faceprint.io import atomic_write_json

__all__ = ["ALIGN_HELP", "console", "err_console", "metrics_table", "model_spec", "path_embedder", "report_skipped",
           "write_json"]

console = Console()
err_console = Console(stderr=True)


def write_json(path: Path | None, obj: Any) -> None:
    """Write ``obj`` to ``path`` (atomically) when a path was given."""
    if path is not None:
        atomic_write_json(path, obj)
        err_console.print(f"wrote {path}")


def metrics_table(title: str, columns: dict[str, dict[str, Any]]) -> Table:
    """A table of verification/identification figures, one column per embedding."""
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    rows = [("accuracy", "accuracy", "{:.4f}"), ("± std", "accuracy_std", "{:.4f}"), ("VAL@FAR=1e-3", "val", "{:.4f}"),
            ("FAR", "far", "{:.5f}"), ("AUC", "auc", "{:.4f}"), ("EER", "eer", "{:.4f}"), ("rank-1", "rank1", "{:.4f}"),
            ("MAP@R", "map_at_r", "{:.4f}")]
    for label, key, fmt in rows:
        if any(c.get(key) is not None for c in columns.values()):
            table.add_row(label, *[fmt.format(c[key]) if c.get(key) is not None else "—" for c in columns.values()])
    return table


def report_skipped(lines: list[str], limit: int | None = 50, more: str = "more skipped") -> None:
    """Print ``skipped <line>`` for each file a command left out (at most ``limit``), then how many more."""
    for line in lines[:limit]:
        err_console.print(f"skipped {line}", highlight=False, soft_wrap=True)
    if limit is not None and len(lines) > limit:
        err_console.print(f"… and {len(lines) - limit} {more}")


ALIGN_HELP = ("How faces are cut: auto (pretrained models detect and align as they expect; trained checkpoints take "
              "images as given), mtcnn (detect and align), none (images are already face crops).")


def path_embedder(embedder: Any, align: str) -> Any:
    """The Embedder itself, or the detect → align → embed pipeline around it, as ``align`` asks."""
    from faceprint.models import face_embedder

    if align not in ("auto", "mtcnn", "none"):
        raise typer.BadParameter(f"--align must be auto, mtcnn or none, not {align!r}")
    if align == "mtcnn":
        return face_embedder(embedder, detect=True)
    if align == "auto" and embedder.align != "none":
        return face_embedder(embedder)
    return embedder


def model_spec(weights: str | None, checkpoint: Path | None, backend: str = "torch") -> dict[str, str]:
    """``{"weights": NAME}`` or ``{"checkpoint": ABSOLUTE PATH}`` plus the backend: what indexes and classifiers store.

    With neither, the default model (casia-webface); loading it says what to run when it is not available.
    """
    from faceprint.models.known import DEFAULT_MODEL

    if weights is not None and checkpoint is not None:
        raise typer.BadParameter("give one of --weights NAME or --checkpoint CKPT, not both")
    if weights is None and checkpoint is None:
        weights = DEFAULT_MODEL
    spec = {"weights": weights} if weights is not None else {"checkpoint": str(Path(checkpoint).resolve())}  # type: ignore[arg-type]
    return {**spec, "backend": backend}
