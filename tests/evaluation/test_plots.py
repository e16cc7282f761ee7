"""Charts are matplotlib figures: ROC with a linear and a log false-accept panel, stacked training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from faceprint.evaluation.plots import curves_figure, roc_figure, save_curves, save_roc_chart


def test_roc_figure_has_a_linear_and_a_log_far_panel() -> None:
    fpr = np.concatenate([[0.0], np.logspace(-4, 0, 50)])
    fig = roc_figure([("model (AUC 0.99)", fpr, np.sqrt(fpr)), ("pixels", fpr, fpr)])
    lin, log = fig.axes
    assert (lin.get_xscale(), log.get_xscale()) == ("linear", "log")
    assert log.get_xlim()[0] == 1e-4 and [t.get_text() for t in lin.get_legend().get_texts()] == ["model (AUC 0.99)", "pixels"]
    # both curves on both panels; the log panel drops FAR = 0, which a log axis cannot show
    curves = [line for line in lin.get_lines() if line.get_label() in ("model (AUC 0.99)", "pixels")]
    solid = [line for line in log.get_lines() if line.get_linestyle() == "-"]  # the FAR 1e-3 marker is dotted
    assert len(curves) == 2 and len(solid) == 2
    assert all(min(line.get_xdata()) > 0 for line in solid)


def test_roc_png_is_written_with_curves_in_both_halves(tmp_path: Path) -> None:
    fpr = np.concatenate([[0.0], np.logspace(-4, 0, 50)])
    img = Image.open(save_roc_chart(tmp_path / "roc.png", [("m", fpr, np.sqrt(fpr))])).convert("RGB")
    assert img.size == (1100, 460)
    rgb = np.asarray(img).astype(int)
    blue = (rgb[..., 2] - rgb[..., 0]) > 60  # matplotlib's first colour, the curve's
    assert blue[:, :550].sum() > 200 and blue[:, 550:].sum() > 200


def test_curves_stack_one_panel_each(tmp_path: Path) -> None:
    steps = np.arange(10)
    panels = [("acc", "step", "accuracy", [("train", steps, steps / 10), ("dev", steps, steps / 12)]),
              ("loss", "step", "loss", [("loss", steps, 1 / (1 + steps))])]
    fig = curves_figure(panels)
    assert [ax.get_title() for ax in fig.axes] == ["acc", "loss"] and [len(ax.get_lines()) for ax in fig.axes] == [2, 1]
    one = save_curves(tmp_path / "a.png", panels[:1])
    two = save_curves(tmp_path / "b.png", panels)
    assert Image.open(two).height == 2 * Image.open(one).height
