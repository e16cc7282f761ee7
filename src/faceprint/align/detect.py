"""The MTCNN detection pipeline (SPEC §3.1): image pyramid → P-Net → R-Net → O-Net, batched over images.

Numerics follow facenet-pytorch's ``detect_face`` step by step so detections match its reference
outputs: area-interpolated pyramid levels of size (int(h·s + 1), int(w·s + 1)), per-scale NMS 0.5,
per-image NMS 0.7, box regression, squaring, 1-based padding, R-Net (0.7), O-Net (0.7) with
landmarks and a final intersection-over-minimum NMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from faceprint.align.nets import ONet, PNet, RNet
from faceprint.align.nms import batched_nms
from faceprint.align.pyramid import area_windows, stage_one, sum_dtype

__all__ = ["Detections", "Policy", "choose_face", "detect_faces"]

Policy = Literal["largest", "center", "skip"]


@dataclass
class Detections:
    """Faces found in one image, largest box first: boxes (n, 4) x1 y1 x2 y2, probs (n,), landmarks (n, 5, 2)."""

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


def choose_face(det: Detections, size: tuple[int, int], policy: Policy) -> int | None:
    """Index of the face to keep: the largest, the one nearest the image centre, or None when ambiguous."""
    if len(det) == 0 or (policy == "skip" and len(det) > 1):
        return None
    if policy == "center" and len(det) > 1:
        centres = (det.boxes[:, :2] + det.boxes[:, 2:4]) / 2
        return int(np.argmin(((centres - np.array(size) / 2) ** 2).sum(1)))
    return 0  # detections come largest first


def _norm(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def _rerec(b: torch.Tensor) -> torch.Tensor:
    b = b.clone()
    h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    side = torch.maximum(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2:4] = b[:, :2] + side[:, None]
    return b


def _bbreg(b: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    b = b.clone()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] = b[:, :4] + reg * torch.stack([w, h, w, h], dim=1)
    return b


class _Integral:
    """Summed-area tables of a batch of images, for exact area-resized crops of many boxes at once.

    An area resize (adaptive average pooling) averages integer-bounded windows, so each output pixel
    is a four-corner difference of the table: one gather per corner for every crop instead of one
    resize call per box. Integer-valued images use int32 tables (exact sums); others use float64.
    """

    def __init__(self, images: list[torch.Tensor], integer: bool) -> None:
        tables, self.bases, self.shapes, base = [], [], [], 0
        for img in images:
            c, h, w = img.shape
            t = torch.zeros(c, h + 1, w + 1, dtype=sum_dtype(integer, h, w))
            t[:, 1:, 1:] = img
            tables.append(t.cumsum_(1).cumsum_(2).flatten())
            self.bases.append(base)
            self.shapes.append((h, w))
            base += t.numel()
        dtype = torch.float64 if any(t.dtype == torch.float64 for t in tables) else torch.int32
        self.flat = torch.cat([t.to(dtype) for t in tables])

    def crops(self, boxes: torch.Tensor, inds: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Area-resized crops of each box (1-based, clamped as MTCNN's ``pad``) and which boxes had one."""
        b = boxes[:, :4].trunc().long()
        hw = torch.tensor(self.shapes, dtype=torch.long)[inds]
        x0, y0 = b[:, 0].clamp(min=1) - 1, b[:, 1].clamp(min=1) - 1
        x1, y1 = torch.minimum(b[:, 2], hw[:, 1]), torch.minimum(b[:, 3], hw[:, 0])
        ok = ((y1 > y0) & (x1 > x0)).nonzero().flatten()
        if len(ok) == 0:
            return torch.zeros(0, 3, size, size), ok
        x0, y0, x1, y1, inds, hw = x0[ok], y0[ok], x1[ok], y1[ok], inds[ok], hw[ok]
        row = hw[:, 1:2] + 1  # table row stride
        ys, ye = (y0[:, None] + v for v in area_windows(y1 - y0, size))
        xs, xe = (x0[:, None] + v for v in area_windows(x1 - x0, size))
        plane = (hw[:, 0:1] + 1) * row
        base = (torch.tensor(self.bases, dtype=torch.long)[inds][:, None] + torch.arange(3) * plane)[:, :, None, None]
        rs, re = (ys * row)[:, None, :, None], (ye * row)[:, None, :, None]
        cs, ce = xs[:, None, None, :], xe[:, None, None, :]
        t = self.flat
        total = t[base + re + ce] - t[base + rs + ce] - t[base + re + cs] + t[base + rs + cs]
        area = ((ye - ys)[:, :, None] * (xe - xs)[:, None, :])[:, None]
        crops = total.to(torch.float32) / area
        return _norm(crops).contiguous(memory_format=torch.channels_last), ok


@torch.inference_mode()
def detect_faces(
    images: list[torch.Tensor], nets: tuple[PNet, RNet, ONet], min_face_size: float = 20.0,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709, chunk: int = 64,
) -> list[Detections]:
    """Detect faces in (3, H, W) float 0..255 RGB tensors of any sizes, all images and pyramid levels batched."""
    pnet, rnet, onet = nets
    integer = all(bool(torch.equal(img, img.trunc())) for img in images)  # exact int32 window sums
    boxes, inds = stage_one(images, pnet, min_face_size, factor, thresholds[0], integer=integer)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
    boxes, inds = boxes[pick], inds[pick]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    reg = boxes[:, 5:9] * torch.stack([w, h, w, h], dim=1)
    boxes = _rerec(torch.cat([boxes[:, :4] + reg, boxes[:, 4:5]], dim=1))
    points = torch.zeros(0, 5, 2)
    integral = _Integral(images, integer) if len(boxes) else None
    if integral is not None:  # stage two
        data, ok = integral.crops(boxes, inds, 24)
        boxes, inds = boxes[ok], inds[ok]
        outs = [rnet(data[i : i + chunk]) for i in range(0, len(data), chunk)]
        reg, score = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])[:, 1]
        keep = score > thresholds[1]
        boxes, inds, reg = torch.cat([boxes[keep, :4], score[keep, None]], dim=1), inds[keep], reg[keep]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes = _rerec(_bbreg(boxes[pick], reg[pick]))
        inds = inds[pick]
    if integral is not None and len(boxes):  # stage three
        data, ok = integral.crops(boxes, inds, 48)
        boxes, inds = boxes[ok], inds[ok]
        step = max(1, chunk // 8)  # 48-px crops: a chunk of about the memory of R-Net's (chunks keep buffers cache-sized)
        outs = [onet(data[i : i + step]) for i in range(0, len(data), step)]
        reg, lm, score = (torch.cat([o[j] for o in outs]) for j in range(3))
        keep = score[:, 1] > thresholds[2]
        boxes, inds, reg, lm = torch.cat([boxes[keep, :4], score[keep, 1:2]], dim=1), inds[keep], reg[keep], lm[keep]
        bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        px = bw[:, None] * lm[:, :5] + boxes[:, 0:1] - 1
        py = bh[:, None] * lm[:, 5:] + boxes[:, 1:2] - 1
        points = torch.stack([px, py], dim=2)
        boxes = _bbreg(boxes, reg)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7, mode="min", plus_one=True, ties_last=True)
        boxes, inds, points = boxes[pick], inds[pick], points[pick]
    return [_per_image(boxes, points, inds, i) for i in range(len(images))]


def _per_image(boxes: torch.Tensor, points: torch.Tensor, inds: torch.Tensor, i: int) -> Detections:
    sel = (inds == i).nonzero().flatten()
    b, p = boxes[sel].numpy(), points[sel].numpy()
    order = np.argsort(-((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])), kind="stable") if len(b) else np.zeros(0, int)
    return Detections(b[order, :4].astype(np.float32), b[order, 4].astype(np.float32), p[order].astype(np.float32))
