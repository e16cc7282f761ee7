"""Images → face crops → embeddings: detection and alignment (MTCNN) or whole images, with thumbnails."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faceprint.align import MTCNN
from faceprint.data.images import ImageLoadError, decode_bytes, load_rgb, to_rgb
from faceprint.inference import Embedder

__all__ = ["FaceCrop", "FaceEmbedder", "ImageLoadError", "model_fingerprint", "thumbnail"]


@dataclass
class FaceCrop:
    """One face of one image: the aligned crop and its box in the image (None for a whole-image crop)."""

    image: Image.Image
    box: list[float] | None
    prob: float | None = None


def model_fingerprint(embedder: Embedder) -> str:
    """A sha256 over the model's tensors: the identity of "the same model"."""
    import hashlib

    digest = hashlib.sha256(type(embedder.model).__name__.encode())
    for key, value in sorted(embedder.model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class FaceEmbedder:
    """Detect + align + embed. ``detect=False`` treats each image as one pre-cropped face (faces, dogs)."""

    def __init__(self, embedder: Embedder, detect: bool = True, margin: float = 32) -> None:
        self.embedder = embedder
        self.detect = detect
        self.margin = margin
        self.mtcnn = MTCNN() if detect else None

    def crops(self, image: Image.Image, all_faces: bool = True) -> list[FaceCrop]:
        """Face crops of one RGB image, largest first (only the largest with ``all_faces=False``)."""
        size = self.embedder.image_size
        if self.mtcnn is None:
            return [FaceCrop(image.resize((size, size), Image.BILINEAR), None)]
        det = self.mtcnn.detect(image)[0]
        if len(det) == 0:
            return []
        crops = self.mtcnn.crop(image, det, "margin", size, self.margin)
        keep = range(len(det)) if all_faces else range(1)
        return [FaceCrop(crops[i], [round(float(v), 1) for v in det.boxes[i]], float(det.probs[i])) for i in keep]

    def embed_crops(self, crops: list[FaceCrop]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.embedder.dim), np.float32)
        return self.embedder.embed([c.image for c in crops])

    def load(self, source: str | Path | bytes) -> Image.Image:
        """An RGB image from a path or raw bytes (raises ImageLoadError for bad data)."""
        return decode_bytes(source) if isinstance(source, bytes) else load_rgb(source)


def thumbnail(crop: Image.Image, size: int = 96) -> bytes:
    """A small JPEG of a face crop."""
    buf = io.BytesIO()
    to_rgb(crop).resize((size, size), Image.BILINEAR).save(buf, format="JPEG", quality=85)
    return buf.getvalue()

