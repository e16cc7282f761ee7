"""``MTCNN``: detect faces in Pillow images, arrays or tensors, and crop or align them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from faceprint.align.crop import margin_crop, similarity_align
from faceprint.align.detect import Detections, detect_faces
from faceprint.align.nets import load_mtcnn_nets
from faceprint.data.images import to_rgb

__all__ = ["MTCNN"]

ImageLike = Image.Image | np.ndarray | torch.Tensor


def _as_tensor(img: ImageLike) -> tuple[torch.Tensor, Image.Image]:
    """(3, H, W) float 0..255 tensor and an RGB Pillow view of one image."""
    if isinstance(img, torch.Tensor):
        arr = img.detach().cpu().numpy()
        if arr.ndim == 3 and arr.shape[0] == 3:
            arr = arr.transpose(1, 2, 0)
        img = np.clip(arr, 0, 255).astype(np.uint8)
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img if img.dtype == np.uint8 else np.clip(img, 0, 255).astype(np.uint8))
    pil = to_rgb(img)
    return torch.from_numpy(np.asarray(pil, dtype=np.float32).copy()).permute(2, 0, 1), pil


def _pixels(im: ImageLike) -> int:
    """Height × width of one image as ``_as_tensor`` reads it (PIL; HW or HWC array; CHW, HW or HWC tensor)."""
    if isinstance(im, Image.Image):
        return im.width * im.height
    shape = tuple(im.shape)
    if isinstance(im, torch.Tensor) and (len(shape) == 2 or shape[0] in (1, 3)):
        return int(np.prod(shape[-2:]))
    return int(shape[0] * shape[1])


def _by_pixels(images: list[ImageLike], budget: int) -> list[list[ImageLike]]:
    """Consecutive groups of images with at most ``budget`` pixels each (an image over it alone), in order."""
    groups: list[list[ImageLike]] = []
    total = budget + 1
    for im in images:
        n = _pixels(im)
        if total + n > budget:
            groups.append([])
            total = 0
        groups[-1].append(im)
        total += n
    return groups


class MTCNN:
    """The MTCNN detector with facenet-pytorch's defaults (min face 20 px, thresholds 0.6/0.7/0.7, factor 0.709).

    Args:
        weights: folder holding pnet.pt / rnet.pt / onet.pt (default: the weights shipped with faceprint).
    """

    def __init__(self, weights: str | Path | None = None, min_face_size: float = 20.0,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709) -> None:
        self.nets = load_mtcnn_nets(weights)
        self.min_face_size, self.thresholds, self.factor = min_face_size, thresholds, factor
        self.max_pixels = 4_000_000  # images detected in one call (a larger one alone): bounds the pyramid's memory

    def detect(self, images: ImageLike | Sequence[ImageLike]) -> list[Detections]:
        """Boxes, probabilities and landmarks for each image (largest face first); images below 12 px give none."""
        batch = [images] if isinstance(images, (Image.Image, np.ndarray, torch.Tensor)) and not (
            isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4) else list(images)  # type: ignore[arg-type]
        out: list[Detections] = []
        for group in _by_pixels(batch, self.max_pixels):  # bounded memory: a batch of photos is a few calls, not one
            tensors = [_as_tensor(im)[0] for im in group]  # converted per group, never the whole batch at once
            out += detect_faces(tensors, self.nets, self.min_face_size, self.thresholds, self.factor)
        return out

    def crop(self, image: ImageLike, detections: Detections, mode: Literal["margin", "similarity"] = "similarity",
             image_size: int = 160, margin: float = 0) -> list[Image.Image]:
        """One crop per detected face: a margin box crop or a 5-point similarity alignment."""
        pil = _as_tensor(image)[1]
        if mode == "margin":
            return [margin_crop(pil, b, image_size, margin) for b in detections.boxes]
        return [similarity_align(pil, lm, image_size) for lm in detections.landmarks]
