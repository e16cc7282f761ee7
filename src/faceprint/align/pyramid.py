"""MTCNN's first stage batched across pyramid scales and images: every level is packed into mosaics.

P-Net is fully convolutional (12×12 receptive field, stride 2), so the levels of every image can be
tiled side by side at even offsets into a few canvases of bounded size and run in one call each;
levels larger than a canvas are cut into horizontal stripes that overlap by 10 rows. Each output
inside a tile then sees exactly the pixels it would see on the level alone, with one exception this
module removes: where a level's (or last stripe's) first-conv width or height is odd, the ceil-mode
max-pool's last window would reach into the neighbouring tile; those first-conv cells are set to
−∞ so the window keeps only its in-tile element, as on the level alone.

Canvases have a fixed shape per image size, so repeated calls ask for the same kernel and buffer sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faceprint.align.nets import PNet
from faceprint.align.nms import batched_nms

__all__ = ["Tile", "area_levels", "area_windows", "level_sizes", "pack_tiles", "pyramid_scales", "stage_one", "sum_dtype"]

RECEPTIVE = 12  # P-Net's receptive field; outputs per n input rows: (n - 1) // 2 - 4


def pyramid_scales(h: int, w: int, min_face_size: float, factor: float) -> list[float]:
    """Scales of MTCNN's image pyramid: from 12/min_face_size down while the short side stays ≥ 12 px."""
    m = 12.0 / min_face_size
    minl, scale, scales = min(h, w) * m, m, []
    while minl >= RECEPTIVE:
        scales.append(scale)
        scale, minl = scale * factor, minl * factor
    return scales


def level_sizes(h: int, w: int, min_face_size: float, factor: float) -> list[tuple[float, int, int]]:
    """(scale, height, width) of each pyramid level of an h × w image, sized as facenet-pytorch does."""
    return [(s, int(h * s + 1), int(w * s + 1)) for s in pyramid_scales(h, w, min_face_size, factor)]


def area_windows(n_in: torch.Tensor, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive-average-pool windows [start, end) of n_out outputs over n_in pixels: shape (*n_in.shape, n_out)."""
    i = torch.arange(n_out)
    n = n_in[..., None]
    return (i * n) // n_out, -((-(i + 1) * n) // n_out)


def sum_dtype(integer: bool, h: int, w: int) -> torch.dtype:
    """Running sums of an h × w image: int32 (exact) for integer pixels that cannot overflow, else float64."""
    return torch.int32 if integer and (h + 1) * (w + 1) * 255 < 2**31 else torch.float64


def area_levels(x: torch.Tensor, sizes: list[tuple[int, int]], integer: bool | None = None) -> list[torch.Tensor]:
    """``F.interpolate(x, size, mode="area")`` for several sizes, from one running sum over the rows.

    Each level takes row-window sums by differencing the running sum, then a running sum over those
    rows' columns, differenced again: two passes over (level rows × image width) instead of a
    windowed average per output. Integer-valued images (``integer``; checked when None) use int32
    sums, exact; others float64.
    """
    n, c, h, w = x.shape
    if integer is None:
        integer = bool(torch.equal(x, x.trunc()))
    dtype = sum_dtype(integer, h, w)
    table = torch.zeros(n * c, h + 1, w, dtype=dtype)
    table[:, 1:] = x.reshape(n * c, h, w)
    table.cumsum_(1)
    # scratch reused by every level: fresh multi-MB tensors cost more in page faults than the copies
    most = n * c * max(oh for oh, _ in sizes) * (w + 1)
    top, bottom, rows, right, left = (torch.empty(most, dtype=dtype) for _ in range(5))
    view = lambda buf, *shape: buf[: n * c * shape[0] * shape[1]].view(n * c, *shape)
    levels = []
    for oh, ow in sizes:
        ys, ye = area_windows(torch.tensor(h), oh)
        xs, xe = area_windows(torch.tensor(w), ow)
        r = view(rows, oh, w + 1)
        r[:, :, 0] = 0
        torch.sub(torch.index_select(table, 1, ye, out=view(top, oh, w)),
                  torch.index_select(table, 1, ys, out=view(bottom, oh, w)), out=r[:, :, 1:])
        r.cumsum_(2)
        sums = torch.index_select(r, 2, xe, out=view(right, oh, ow)) - torch.index_select(r, 2, xs, out=view(left, oh, ow))
        levels.append((sums.to(torch.float32) / ((ye - ys)[:, None] * (xe - xs)[None, :]).to(torch.float32)).reshape(n, c, oh, ow))
    return levels


def _outputs(n: int) -> int:
    return (n - 1) // 2 - 4


@dataclass(frozen=True)
class Tile:
    """Rows ``row0 : row0 + rows`` of pyramid level ``level`` of image ``image``, placed at (y, x) on ``canvas``."""

    image: int
    level: int
    scale: float
    row0: int
    rows: int
    cols: int
    canvas: int = 0
    y: int = 0
    x: int = 0


def _stripes(image: int, level: int, scale: float, h: int, w: int, max_rows: int) -> list[Tile]:
    """The level as one tile, or stripes of whole output rows (input rows overlap by 10) of at most max_rows."""
    if h <= max_rows:
        return [Tile(image, level, scale, 0, h, w)]
    step = max(1, (max_rows - 10) // 2)  # output rows per stripe
    total, tiles = _outputs(h), []
    for a in range(0, total, step):
        b = min(a + step, total)
        rows = 2 * (b - a) + 10 if b < total else h - 2 * a  # the last stripe keeps the level's bottom edge
        tiles.append(Tile(image, level, scale, 2 * a, rows, w))
    return tiles


def pack_tiles(sizes: list[tuple[int, int]], min_face_size: float, factor: float,
               max_pixels: int = 1 << 18) -> tuple[list[Tile], list[tuple[int, int]]]:
    """Shelf-pack every pyramid level of images of ``sizes`` (h, w) into canvases of about max_pixels.

    Returns the placed tiles (ordered by image, level, stripe) and the canvases' (height, width).
    """
    even = lambda n: n + (n & 1)
    levels = [(i, k, s, lh, lw) for i, (h, w) in enumerate(sizes)
              for k, (s, lh, lw) in enumerate(level_sizes(h, w, min_face_size, factor))]
    if not levels:
        return [], []
    width = even(max(lw for *_, lw in levels))
    max_height = max(max_pixels // width, 32) & ~1  # even; taller levels are cut into stripes
    tiles = [t for i, k, s, lh, lw in levels for t in _stripes(i, k, s, lh, lw, max_height)]
    placed: list[Tile | None] = [None] * len(tiles)
    canvases: list[tuple[int, int]] = []
    canvas, y, x, shelf = 0, 0, 0, 0
    for n in sorted(range(len(tiles)), key=lambda n: -tiles[n].rows):  # stable: equal heights keep their order
        t = tiles[n]
        if x + t.cols > width:  # next shelf
            y, x, shelf = y + shelf, 0, 0
        if y + even(t.rows) > max_height:  # next canvas
            canvases.append((y, width))
            canvas, y, x, shelf = canvas + 1, 0, 0, 0
        placed[n] = Tile(t.image, t.level, t.scale, t.row0, t.rows, t.cols, canvas, y, x)
        x, shelf = x + even(t.cols), max(shelf, even(t.rows))
    canvases.append((y + shelf, width))
    return placed, canvases  # type: ignore[return-value]


def _pnet_canvas(pnet: PNet, canvas: torch.Tensor, tiles: list[Tile]) -> tuple[torch.Tensor, torch.Tensor]:
    x = pnet.stem(canvas)
    for t in tiles:  # odd first-conv extents: hide the cell past the edge from the ceil-mode pool
        h, w = t.rows - 2, t.cols - 2
        if w % 2:
            x[:, :, t.y : t.y + h, t.x + w] = float("-inf")
        if h % 2:
            x[:, :, t.y + h, t.x : t.x + w + (w % 2)] = float("-inf")
    return pnet.head(x)


@torch.inference_mode()
def stage_one(images: list[torch.Tensor], pnet: PNet, min_face_size: float, factor: float, threshold: float,
              max_pixels: int = 1 << 18, integer: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """P-Net candidates (x1 y1 x2 y2 score reg×4) after per-level NMS 0.5, and their image index.

    Candidates come ordered by image, then level, then score, exactly as a level-by-level loop gives them.
    """
    sizes = [tuple(img.shape[1:]) for img in images]
    tiles, shapes = pack_tiles(sizes, min_face_size, factor, max_pixels)  # type: ignore[arg-type]
    if not tiles:
        return torch.zeros(0, 9), torch.zeros(0, dtype=torch.long)
    canvases = [torch.zeros(1, 3, h, w).contiguous(memory_format=torch.channels_last) for h, w in shapes]
    for i, img in enumerate(images):  # image by image: a stacked batch of large frames only adds memory traffic
        h, w = img.shape[1:]
        mine = [t for t in tiles if t.image == i]
        sizes_i = [(lh, lw) for _, lh, lw in level_sizes(h, w, min_face_size, factor)]
        if not sizes_i:  # an image too small for any level (a 1×1 among others) gives no candidates
            continue
        for k, level in enumerate(area_levels(img[None], sizes_i, integer)):
            for t in mine:
                if t.level == k:
                    canvases[t.canvas][0, :, t.y : t.y + t.rows, t.x : t.x + t.cols] = level[0, :, t.row0 : t.row0 + t.rows]
    cands, keys = [], []
    n_levels = max(t.level for t in tiles) + 1
    info = torch.tensor([[t.image, t.level, t.row0 // 2, t.y // 2, t.x // 2] for t in tiles])
    scales = torch.tensor([t.scale for t in tiles], dtype=torch.float32)
    for c, canvas in enumerate(canvases):
        mine = [(n, t) for n, t in enumerate(tiles) if t.canvas == c]
        reg, probs = _pnet_canvas(pnet, canvas.sub_(127.5).mul_(0.0078125), [t for _, t in mine])
        owner = torch.full(probs.shape[2:], -1, dtype=torch.long)
        for n, t in mine:
            owner[t.y // 2 : t.y // 2 + _outputs(t.rows), t.x // 2 : t.x // 2 + _outputs(t.cols)] = n
        score = probs[0, 1]
        iy, ix = ((score >= threshold) & (owner >= 0)).nonzero().unbind(1)
        n = owner[iy, ix]
        image, level, row0, oy, ox = info[n].unbind(1)
        ly, lx = iy - oy + row0, ix - ox  # output row/col on the level
        scale = scales[n]
        bb = torch.stack([lx, ly], dim=1).to(torch.float32)
        q1 = ((2 * bb + 1) / scale[:, None]).floor()
        q2 = ((2 * bb + 12) / scale[:, None]).floor()
        cands.append(torch.cat([q1, q2, score[iy, ix, None], reg[0][:, iy, ix].T], dim=1))
        group = image * n_levels + level
        keys.append((group * (1 << 20) + ly) * (1 << 20) + lx)  # image, level, row, col: a level loop's order
    cand, key = torch.cat(cands), torch.cat(keys)
    order = torch.argsort(key)
    cand, group = cand[order], key[order] >> 40
    pick = batched_nms(cand[:, :4], cand[:, 4], group, 0.5)
    return cand[pick], group[pick] // n_levels
