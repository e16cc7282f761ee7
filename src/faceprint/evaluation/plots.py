"""Charts drawn with matplotlib (the object API and the Agg canvas: no pyplot state, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceprint.io import atomic_path

__all__ = ["Series", "curves_figure", "roc_figure", "save_curves", "save_roc_chart"]

Series = tuple[str, np.ndarray, np.ndarray]
"""(label, x, y)."""


def _figure(rows: int, cols: int, size: tuple[float, float]):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _save(fig, path: str | Path) -> Path:  # type: ignore[no-untyped-def]
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def save_roc_chart(path: str | Path, series: Sequence[Series], title: str = "ROC (10-fold mean)") -> Path:
    """ROC curves twice: a linear false-accept axis and a log one (where VAL@FAR=1e-3 lives)."""
    return _save(roc_figure(series, title), path)


def roc_figure(series: Sequence[Series], title: str = "ROC (10-fold mean)"):  # type: ignore[no-untyped-def]
    """The ROC figure: linear FAR on the left, log FAR (1e-4..1) on the right."""
    fig, axes = _figure(1, 2, (11, 4.6))
    lin, log = axes[0]
    for label, fpr, tpr in series:
        fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
        (line,) = lin.plot(fpr, tpr, label=label, linewidth=1.6)
        keep = fpr > 0
        log.plot(fpr[keep], tpr[keep], color=line.get_color(), linewidth=1.6)
    lin.plot([0, 1], [0, 1], color="0.75", linewidth=1, linestyle="--")
    lin.set(xlim=(0, 1), ylim=(0, 1.005), xlabel="false accept rate", ylabel="true accept rate", title=title)
    log.set_xscale("log")
    log.set(xlim=(1e-4, 1), ylim=(0, 1.005), xlabel="false accept rate (log)", title="low false-accept region")
    log.axvline(1e-3, color="0.6", linewidth=1, linestyle=":")
    for ax in (lin, log):
        ax.grid(True, alpha=0.3)
    lin.legend(loc="lower right", fontsize=9)
    return fig


def save_curves(path: str | Path, panels: Sequence[tuple[str, str, str, Sequence[Series]]]) -> Path:
    """Line charts stacked vertically, one per (title, x label, y label, series) panel: training and sweep curves."""
    return _save(curves_figure(panels), path)


def curves_figure(panels: Sequence[tuple[str, str, str, Sequence[Series]]]):  # type: ignore[no-untyped-def]
    """The stacked line charts of ``save_curves``."""
    fig, axes = _figure(len(panels), 1, (7.5, 3.2 * len(panels)))
    for ax, (title, xlabel, ylabel, series) in zip(axes[:, 0], panels):
        for label, x, y in series:
            ax.plot(np.asarray(x, float), np.asarray(y, float), label=label, linewidth=1.6)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(True, alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=9)
    return fig
