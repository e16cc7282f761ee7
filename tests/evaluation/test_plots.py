"""Charts are real matplotlib figures written atomically: ROC with linear and log FAR panels, stacked curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from faceprint.evaluation.plots import save_curves, save_roc_chart


def _ink_columns(img: Image.Image, x0: int, x1: int) -> int:
    arr = np.asarray(img.convert("L"))[:, x0:x1]
    return int((arr < 128).any(axis=0).sum())


def test_roc_chart_has_two_panels_with_curves(tmp_path: Path) -> None:
    fpr = np.concatenate([[0.0], np.logspace(-4, 0, 50)])
    path = save_roc_chart(tmp_path / "roc.png", [("model (AUC 0.99)", fpr, np.sqrt(fpr)), ("pixels", fpr, fpr)])
    img = Image.open(path)
    assert img.size == (1100, 460)
    w = img.width
    # both halves hold drawn content (axes, ticks, curves); coloured curve pixels exist in each half
    rgb = np.asarray(img.convert("RGB")).astype(int)
    coloured = (np.abs(rgb[..., 0] - rgb[..., 2]) > 60)
    assert coloured[:, : w // 2].sum() > 200 and coloured[:, w // 2 :].sum() > 200
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed into place


def test_curves_stack_one_panel_each(tmp_path: Path) -> None:
    steps = np.arange(10)
    one = save_curves(tmp_path / "a.png", [("acc", "step", "accuracy", [("dev", steps, steps / 10)])])
    two = save_curves(tmp_path / "b.png", [("acc", "step", "accuracy", [("dev", steps, steps / 10)]),
                                           ("loss", "step", "loss", [("loss", steps, 1 / (1 + steps))])])
    assert Image.open(two).height == 2 * Image.open(one).height
