"""Image transforms in torch: random crop, flip, colour jitter and FaceNet's fixed standardization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["Augment", "augment", "fixed_standardize", "pil_to_uint8", "resize_uint8"]


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation strengths (0 disables each)."""

    crop_scale: float = 0.85  # smallest side fraction kept by the random crop
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


def pil_to_uint8(img: Image.Image, size: int) -> torch.Tensor:
    """RGB Pillow image → (3, size, size) uint8 tensor, resized with bilinear filtering."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a (3, H, W) uint8 tensor to (3, size, size) as float."""
    if x.shape[-2:] == (size, size):
        return x.float()
    return F.interpolate(x[None].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def fixed_standardize(x: torch.Tensor) -> torch.Tensor:
    """FaceNet's fixed image standardization (x − 127.5) / 128 on 0..255 values."""
    return (x.float() - 127.5) / 128.0


def augment(x: torch.Tensor, size: int, cfg: Augment, seed: int) -> torch.Tensor:
    """Random crop + flip + colour jitter of a (3, H, W) uint8 tensor, seeded; returns float 0..255."""
    rng = np.random.default_rng(seed)
    h, w = x.shape[-2:]
    scale = rng.uniform(cfg.crop_scale, 1.0) if cfg.crop_scale < 1 else 1.0
    ch, cw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = resize_uint8(x[:, top : top + ch, left : left + cw], size)
    if cfg.flip and rng.random() < 0.5:
        out = out.flip(-1)
    if cfg.brightness:
        out = out * rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    if cfg.contrast:
        mean = out.mean()
        out = (out - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    if cfg.saturation:
        grey = out.mean(dim=0, keepdim=True)
        out = (out - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
    return out.clamp(0, 255)
