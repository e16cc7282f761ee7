"""Non-maximum suppression in torch (no torchvision): IoU or intersection-over-minimum, per group."""

from __future__ import annotations

import torch

__all__ = ["batched_nms", "nms"]


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union", plus_one: bool = False,
        ties_last: bool = False) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes, highest score first.

    A box is dropped when its overlap with a kept box exceeds ``threshold``. ``mode`` is ``union``
    (IoU, as torchvision) or ``min`` (intersection over the smaller area, MTCNN's last stage);
    ``plus_one`` uses MATLAB-style pixel areas (x2 − x1 + 1). Equal scores go lowest index first, or
    highest first with ``ties_last`` (MTCNN's NumPy NMS: the last of an ascending sort wins). Ties are
    real: boxes clipped to the same image region get identical crops and identical scores.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    one = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = boxes.unbind(dim=1)
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order = torch.argsort(scores, stable=True).flip(0) if ties_last else torch.argsort(scores, descending=True, stable=True)
    # pairwise overlap once (N×N), then a greedy sweep over rows in score order
    xx1 = torch.maximum(x1[order][:, None], x1[order][None, :])
    yy1 = torch.maximum(y1[order][:, None], y1[order][None, :])
    xx2 = torch.minimum(x2[order][:, None], x2[order][None, :])
    yy2 = torch.minimum(y2[order][:, None], y2[order][None, :])
    inter = (xx2 - xx1 + one).clamp_min(0) * (yy2 - yy1 + one).clamp_min(0)
    a = area[order]
    denom = torch.minimum(a[:, None], a[None, :]) if mode == "min" else a[:, None] + a[None, :] - inter
    over = (inter / denom) > threshold
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    over_rows = over.cpu()
    alive = keep.cpu()
    for i in range(len(order)):
        if alive[i]:
            alive[i + 1 :] &= ~over_rows[i, i + 1 :]
    return order[alive.to(boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float, mode: str = "union",
                plus_one: bool = False, ties_last: bool = False) -> torch.Tensor:
    """NMS within each group (e.g. image index): groups are shifted apart so they never overlap."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    # shift each group by more than the coordinate span (boxes can have negative coordinates)
    offsets = groups.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None], scores, threshold, mode, plus_one, ties_last)
