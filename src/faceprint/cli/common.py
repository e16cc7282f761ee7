"""Helpers shared by the CLI commands: console, error exits, JSON output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from faceprint.io import atomic_write_json

__all__ = ["console", "err_console", "metrics_table", "report_skipped", "write_json"]

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


def report_skipped(skipped: list, limit: int = 50) -> None:  # type: ignore[type-arg]
    """One line per file or folder a dataset scan left out (``Skipped`` records), then a count."""
    for item in skipped[:limit]:
        err_console.print(f"skipped {item.path}: {item.reason}", highlight=False, soft_wrap=True)
    if len(skipped) > limit:
        err_console.print(f"… and {len(skipped) - limit} more skipped")
