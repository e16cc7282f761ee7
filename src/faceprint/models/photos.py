"""One photo's detections, ready to add to an index or library: ``Detected`` and ``detect_photos``, which makes them
(the library in one process and the bulk runner's ``FacesJob`` alike), and the EXIF date of a photo."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.models.pipeline import thumbnail

__all__ = ["Detected", "detect_photos", "photo_date", "read_photos"]


@dataclass
class Detected:
    """One photo's detections ready to add: the content hash, its facts and each face's vector, box and thumbnail."""

    hash: str
    path: str
    size: int
    width: int
    height: int
    taken_at: str | None
    vectors: np.ndarray
    boxes: list[list[float] | None]
    thumbs: list[bytes | None]
    landmarks: list[Any] = field(default_factory=list)
    probs: list[float | None] = field(default_factory=list)


def photo_date(data: bytes) -> str | None:
    """The EXIF date the photo was taken (DateTimeOriginal, else DateTime), as ``YYYY-MM-DD HH:MM:SS``; None if absent."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            value = exif.get_ifd(0x8769).get(36867) or exif.get(306)
    except Exception:  # noqa: BLE001 - no or damaged EXIF: no date
        return None
    if not isinstance(value, str) or len(value) < 19:
        return None
    return value[:10].replace(":", "-") + value[10:19]


def detect_photos(faces: Any, photos: Sequence[tuple[str, bytes, str, Any]], all_faces: bool | Sequence[bool] = True,
                  thumb_size: int = 96) -> list[Detected]:
    """Each photo's ``Detected`` from (path, bytes, sha256, decoded RGB image), with one batched detection and one
    embedding forward for all of them (``faces``: a FaceEmbedder; ``all_faces`` per photo or for all)."""
    crops = faces.crops_many([img for *_, img in photos], all_faces) if photos else []
    vectors = faces.embed_crops([c for cs in crops for c in cs])
    out, at = [], 0
    for (path, data, digest, img), cs in zip(photos, crops):
        size = img.info.get("original_size", img.size)
        out.append(Detected(digest, path, len(data), size[0], size[1], photo_date(data), vectors[at : at + len(cs)],
                            [c.box for c in cs], [thumbnail(c.image, thumb_size) for c in cs], [c.landmarks for c in cs],
                            [c.prob for c in cs]))
        at += len(cs)
    return out


def read_photos(paths: Sequence[Path], keep: bool) -> dict[Path, tuple[bytes, str] | dict[str, str]]:
    """Each file's (bytes, or b"" unless ``keep``, sha256), or its problem when it cannot be read. Nothing is decoded:
    a photo whose hash is known already costs a read and a hash."""
    out: dict[Path, tuple[bytes, str] | dict[str, str]] = {}
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            out[path] = {"path": str(path), "issue": "unreadable", "detail": exc.strerror or str(exc)}
            continue
        out[path] = (data if keep else b"", hashlib.sha256(data).hexdigest())
    return out
