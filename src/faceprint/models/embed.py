"""Turn images into embeddings: ``embed(model, images)`` for paths, Pillow images, arrays or tensors.

One flip rule everywhere: with ``flip``, a row is [emb(x) ‖ emb(mirrored x)] re-normalised to unit
length, so its squared L2 distances are the mean of the two views' distances (0..4, like one view).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faceprint.data.images import ImageLoadError, load_rgb, to_rgb
from faceprint.data.transforms import pil_to_uint8

__all__ = ["FACENET", "EmbedFn", "ImageInput", "Preprocess", "embed", "embed_paths", "flip_combine", "infer",
           "model_embed_fn", "pixel_embed_fn", "to_uint8"]

ImageInput = str | Path | Image.Image | np.ndarray
EmbedFn = Callable[[torch.Tensor], torch.Tensor]
"""Maps a standardized (N, 3, S, S) batch to (N, D) embeddings."""


@dataclass(frozen=True)
class Preprocess:
    """0..255 RGB pixels → network input: optional RGB→BGR, then (x − mean) / std; ``mean`` is one value or one
    per channel (in the network's channel order)."""

    mean: float | tuple[float, float, float] = 127.5
    std: float = 128.0
    bgr: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.mean, (int, float)):  # a list from JSON: one value per channel
            if len(self.mean) != 3:
                raise ValueError(f"mean must be one value or three, got {self.mean!r}")
            object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1) if isinstance(self.mean, tuple) else self.mean
        return ((x.flip(-3) if self.bgr else x) - mean) / self.std


FACENET = Preprocess()
"""FaceNet's fixed standardization (x − 127.5) / 128."""


def model_embed_fn(model: torch.nn.Module) -> EmbedFn:
    """Wrap a model for inference (eval mode, no gradients)."""
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")

    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x.to(device)).float().cpu()

    return fn


def pixel_embed_fn(x: torch.Tensor) -> torch.Tensor:
    """The raw-pixel baseline: the standardized image flattened and L2-normalized."""
    return F.normalize(x.flatten(1), dim=1)


def to_uint8(image: ImageInput, size: int) -> torch.Tensor:
    """A path, Pillow image or array → (3, size, size) uint8 RGB tensor (bilinear resize)."""
    if isinstance(image, (str, Path)):
        return pil_to_uint8(load_rgb(image), size)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8))
    if isinstance(image, Image.Image):
        return pil_to_uint8(to_rgb(image), size)
    raise TypeError(f"unsupported image type {type(image).__name__}")


def flip_combine(plain: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """The flip rule: [plain ‖ mirrored] re-normalised to unit length."""
    return F.normalize(torch.cat([plain, mirrored], dim=1), dim=1)


def _run(fn: EmbedFn, batch: torch.Tensor, flip: bool) -> torch.Tensor:
    out = fn(batch)
    return flip_combine(out, fn(batch.flip(-1))) if flip else out


def _fn(fn_or_model: EmbedFn | torch.nn.Module) -> EmbedFn:
    return model_embed_fn(fn_or_model) if isinstance(fn_or_model, torch.nn.Module) else fn_or_model


def embed(fn_or_model: EmbedFn | torch.nn.Module, images: Sequence[ImageInput] | torch.Tensor, image_size: int = 160,
          batch_size: int = 64, flip: bool = False, preprocess: Preprocess = FACENET) -> np.ndarray:
    """Embed images; with ``flip`` each row follows the flip rule (module docstring).

    A tensor input must already be standardized (N, 3, S, S); other inputs are loaded, resized to
    ``image_size`` and standardized with ``preprocess``.
    """
    fn = _fn(fn_or_model)
    if isinstance(images, torch.Tensor):
        chunks = [_run(fn, images[i : i + batch_size], flip) for i in range(0, len(images), batch_size)]
    else:
        chunks = []
        for i in range(0, len(images), batch_size):
            batch = torch.stack([to_uint8(im, image_size) for im in images[i : i + batch_size]])
            chunks.append(_run(fn, preprocess(batch), flip))
    return torch.cat(chunks).float().numpy() if chunks else np.zeros((0, 0), np.float32)


def infer(model: torch.nn.Module, image: ImageInput, image_size: int = 160) -> np.ndarray:
    """One image → one embedding vector."""
    return embed(model, [image], image_size=image_size)[0]


def embed_paths(
    fn_or_model: EmbedFn | torch.nn.Module, paths: Sequence[Path], image_size: int, batch_size: int = 64,
    flip: bool = False, on_batch: Callable[[int], None] | None = None, preprocess: Preprocess = FACENET,
) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
    """Embed files, skipping unreadable ones: (embeddings, embedded paths, [(failed path, reason)])."""
    fn = _fn(fn_or_model)
    out, ok, failed = [], [], []
    for i in range(0, len(paths), batch_size):
        tensors = []
        for p in paths[i : i + batch_size]:
            try:
                tensors.append(to_uint8(p, image_size))
                ok.append(Path(p))
            except ImageLoadError as exc:
                failed.append((Path(p), str(exc)))
        if tensors:
            out.append(_run(fn, preprocess(torch.stack(tensors)), flip))
        if on_batch is not None:
            on_batch(min(i + batch_size, len(paths)))
    emb = torch.cat(out).float().numpy() if out else np.zeros((0, 0), np.float32)
    return emb, ok, failed
