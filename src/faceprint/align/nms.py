"""Non-maximum suppression in torch (no torchvision): IoU or intersection-over-minimum, per group."""

from __future__ import annotations

import numpy as np
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
    apart = (~((inter / denom) > threshold)).cpu().numpy()
    # the sweep is sequential by nature; on NumPy rows it costs ~1 µs per kept box (torch: ~6)
    alive = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if alive[i]:
            np.logical_and(alive[i + 1 :], apart[i, i + 1 :], out=alive[i + 1 :])
    return order[torch.from_numpy(alive).to(boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float, mode: str = "union",
                plus_one: bool = False, ties_last: bool = False) -> torch.Tensor:
    """NMS within each group (e.g. image index): kept indices by ascending group, then score as ``nms``.

    Groups never interact, so each is suppressed on its own (cost Σ nᵢ² instead of (Σ nᵢ)²); within a
    group, boxes keep their input order for ties.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(groups, stable=True)
    _, counts = torch.unique_consecutive(groups[order], return_counts=True)
    keep = []
    for idx in torch.split(order, counts.tolist()):
        keep.append(idx[nms(boxes[idx], scores[idx], threshold, mode, plus_one, ties_last)])
    return torch.cat(keep)
