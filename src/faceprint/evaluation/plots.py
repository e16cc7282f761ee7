"""Small line charts drawn with Pillow (ROC curves, training curves): no plotting dependency."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from faceprint.io import atomic_path

__all__ = ["draw_chart", "line_chart", "save_images_stacked"]

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def line_chart(
    path: str | Path, series: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str, xlabel: str, ylabel: str,
    xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None, diagonal: bool = False,
    size: tuple[int, int] = (640, 480),
) -> Path:
    """Draw labelled (x, y) series with axes, ticks and a legend; write a PNG atomically."""
    return save_images_stacked(path, [draw_chart(series, title, xlabel, ylabel, xlim, ylim, diagonal, size)])


def save_images_stacked(path: str | Path, images: Sequence[Image.Image]) -> Path:
    """Stack charts vertically into one PNG, written atomically."""
    out = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height
    path = Path(path)
    with atomic_path(path) as tmp:
        out.save(tmp, format="PNG")
    return path


def draw_chart(
    series: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str, xlabel: str, ylabel: str,
    xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None, diagonal: bool = False,
    size: tuple[int, int] = (640, 480),
) -> Image.Image:
    """The chart as a Pillow image."""
    w, h = size
    left, right, top, bottom = 70, 20, 40, 60
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    xs = np.concatenate([np.asarray(s[1], float) for s in series]) if series else np.zeros(1)
    ys = np.concatenate([np.asarray(s[2], float) for s in series]) if series else np.zeros(1)
    x0, x1 = xlim or (float(np.nanmin(xs)), float(np.nanmax(xs)) or 1.0)
    y0, y1 = ylim or (float(np.nanmin(ys)), float(np.nanmax(ys)) or 1.0)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def to_px(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
        px = left + (np.asarray(x, float) - x0) / (x1 - x0) * (w - left - right)
        py = h - bottom - (np.asarray(y, float) - y0) / (y1 - y0) * (h - top - bottom)
        return list(zip(px.tolist(), py.tolist()))

    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for t in np.linspace(0, 1, 6):
        xv, yv = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        (px, _), = to_px(np.array([xv]), np.array([y0]))
        (_, py), = to_px(np.array([x0]), np.array([yv]))
        d.line([px, h - bottom, px, h - bottom + 5], fill="black")
        d.text((px - 12, h - bottom + 8), f"{xv:.3g}", fill="black")
        d.line([left - 5, py, left, py], fill="black")
        d.text((5, py - 6), f"{yv:.3g}", fill="black")
    if diagonal:
        d.line(to_px(np.array([x0, x1]), np.array([y0, y1])), fill=(190, 190, 190), width=1)
    for k, (name, x, y) in enumerate(series):
        colour = _COLOURS[k % len(_COLOURS)]
        pts = to_px(x, y)
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        d.rectangle([left + 10, top + 10 + 16 * k, left + 22, top + 20 + 16 * k], fill=colour)
        d.text((left + 28, top + 9 + 16 * k), name, fill="black")
    d.text((w / 2 - 4 * len(title), 12), title, fill="black")
    d.text((w / 2 - 3 * len(xlabel), h - 22), xlabel, fill="black")
    d.text((5, top - 16), ylabel, fill="black")
    return img
