"""The MTCNN detection pipeline (SPEC §3.1): image pyramid → P-Net → R-Net → O-Net, batched over images.

Numerics follow facenet-pytorch's ``detect_face`` step by step so detections match its reference
outputs: area-interpolated pyramid levels of size (int(h·s + 1), int(w·s + 1)), per-scale NMS 0.5,
per-image NMS 0.7, box regression, squaring, 1-based padding, R-Net (0.7), O-Net (0.7) with
landmarks and a final intersection-over-minimum NMS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from faceprint.align.nets import ONet, PNet, RNet
from faceprint.align.nms import batched_nms

__all__ = ["Detections", "detect_faces"]


@dataclass
class Detections:
    """Faces found in one image, largest box first: boxes (n, 4) x1 y1 x2 y2, probs (n,), landmarks (n, 5, 2)."""

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


def _norm(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def _pyramid(h: int, w: int, min_face_size: float, factor: float) -> list[float]:
    m = 12.0 / min_face_size
    minl, scale, scales = min(h, w) * m, m, []
    while minl >= 12:
        scales.append(scale)
        scale, minl = scale * factor, minl * factor
    return scales


def _stage_one(imgs: torch.Tensor, pnet: PNet, min_face_size: float, factor: float, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate boxes (x1 y1 x2 y2 score reg×4) and their image index, for same-size images."""
    h, w = imgs.shape[2:]
    boxes, inds = [], []
    for scale in _pyramid(h, w, min_face_size, factor):
        data = _norm(F.interpolate(imgs, size=(int(h * scale + 1), int(w * scale + 1)), mode="area"))
        reg, probs = pnet(data.contiguous(memory_format=torch.channels_last))  # 2-4x faster convs and pools on CPU
        probs = probs[:, 1]
        mask = probs >= threshold
        idx = mask.nonzero()
        bb = idx[:, 1:].to(reg.dtype).flip(1)
        q1 = ((2 * bb + 1) / scale).floor()
        q2 = ((2 * bb + 12) / scale).floor()
        cand = torch.cat([q1, q2, probs[mask][:, None], reg.permute(1, 0, 2, 3)[:, mask].permute(1, 0)], dim=1)
        pick = batched_nms(cand[:, :4], cand[:, 4], idx[:, 0], 0.5)
        boxes.append(cand[pick])
        inds.append(idx[pick, 0])
    if not boxes:
        return torch.zeros(0, 9), torch.zeros(0, dtype=torch.long)
    return torch.cat(boxes), torch.cat(inds)


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


def _crops(images: list[torch.Tensor], boxes: torch.Tensor, inds: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-resized crops of each box (1-based, clamped as MTCNN's ``pad``) and which boxes had one."""
    out, ok = [], []
    b = boxes[:, :4].trunc().int().tolist()
    for k, (x, y, ex, ey) in enumerate(b):
        img = images[int(inds[k])]
        h, w = img.shape[1:]
        x, y, ex, ey = max(x, 1), max(y, 1), min(ex, w), min(ey, h)
        if ey > y - 1 and ex > x - 1:
            out.append(F.interpolate(img[None, :, y - 1 : ey, x - 1 : ex], size=(size, size), mode="area"))
            ok.append(k)
    if not out:
        return torch.zeros(0, 3, size, size), torch.zeros(0, dtype=torch.long)
    return _norm(torch.cat(out)).contiguous(memory_format=torch.channels_last), torch.tensor(ok, dtype=torch.long)


@torch.inference_mode()
def detect_faces(
    images: list[torch.Tensor], nets: tuple[PNet, RNet, ONet], min_face_size: float = 20.0,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709, chunk: int = 2048,
) -> list[Detections]:
    """Detect faces in (3, H, W) float 0..255 RGB tensors of any sizes; same-size images share P-Net batches."""
    pnet, rnet, onet = nets
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        by_size.setdefault(tuple(img.shape[1:]), []).append(i)  # type: ignore[arg-type]
    all_boxes, all_inds = [], []
    for members in by_size.values():
        boxes, local = _stage_one(torch.stack([images[i] for i in members]), pnet, min_face_size, factor, thresholds[0])
        all_boxes.append(boxes)
        all_inds.append(torch.tensor(members, dtype=torch.long)[local])
    boxes, inds = torch.cat(all_boxes), torch.cat(all_inds)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
    boxes, inds = boxes[pick], inds[pick]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    reg = boxes[:, 5:9] * torch.stack([w, h, w, h], dim=1)
    boxes = _rerec(torch.cat([boxes[:, :4] + reg, boxes[:, 4:5]], dim=1))
    points = torch.zeros(0, 5, 2)
    if len(boxes):  # stage two
        data, ok = _crops(images, boxes, inds, 24)
        boxes, inds = boxes[ok], inds[ok]
        outs = [rnet(data[i : i + chunk]) for i in range(0, len(data), chunk)]
        reg, score = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])[:, 1]
        keep = score > thresholds[1]
        boxes, inds, reg = torch.cat([boxes[keep, :4], score[keep, None]], dim=1), inds[keep], reg[keep]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes = _rerec(_bbreg(boxes[pick], reg[pick]))
        inds = inds[pick]
    if len(boxes):  # stage three
        data, ok = _crops(images, boxes, inds, 48)
        boxes, inds = boxes[ok], inds[ok]
        outs = [onet(data[i : i + chunk]) for i in range(0, len(data), chunk)]
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
