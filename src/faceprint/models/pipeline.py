"""Images → face crops → embeddings: detection and alignment (MTCNN) or whole images, with thumbnails.

The one detect → align → embed pipeline used by search, cluster, classify, ``faceprint eval`` and the
benchmarks. How a face is cut follows the model (``Embedder.align``): FaceNet's MTCNN box grown by a
margin, the ArcFace 5-point template, or the whole image for models that take ready crops.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceprint.align import MTCNN
from faceprint.align.crop import DLIB150_TEMPLATE, similarity_align
from faceprint.align.detect import Detections
from faceprint.align.detect import Policy, choose_face
from faceprint.data.images import DETECT_SIDE, ImageLoadError, decode_bytes, decode_photo, load_rgb, to_rgb
from faceprint.data.transforms import pil_to_uint8
from faceprint.models.embed import flip_combine
from faceprint.models.embedder import Embedder

__all__ = ["FaceCrop", "FaceEmbedder", "ImageLoadError", "center_crop", "in_original", "model_fingerprint", "read_batches",
           "thumbnail"]


@dataclass
class FaceCrop:
    """One face of one image: the aligned crop and its box in the image (None for a whole-image crop)."""

    image: Image.Image
    box: list[float] | None
    prob: float | None = None
    parts: list[Image.Image] | None = None  # for a fusion: each model's own crop of this face
    landmarks: list[list[float]] | None = None  # MTCNN's 5 points (eyes, nose, mouth corners) in the image


def model_fingerprint(embedder: Embedder) -> str:
    """A sha256 over the model's tensors (or ONNX file): the identity of "the same model"."""
    return embedder.fingerprint()


def in_original(image: Image.Image, crops: list[FaceCrop]) -> list[FaceCrop]:
    """``crops`` of an image reduced for detection with boxes and landmarks in the original photo's pixels
    (``image.info["original_size"]``); the crops themselves are cut from the reduced image."""
    w0, h0 = image.info.get("original_size", image.size)
    sx, sy = w0 / image.width, h0 / image.height
    if sx == 1 and sy == 1:
        return crops
    for c in crops:
        if c.box is not None:
            c.box = [round(c.box[0] * sx, 1), round(c.box[1] * sy, 1), round(c.box[2] * sx, 1), round(c.box[3] * sy, 1)]
        if c.landmarks is not None:
            c.landmarks = [[round(x * sx, 1), round(y * sy, 1)] for x, y in c.landmarks]
    return crops


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """The central 60 % of an image (LFW's central 150×150 of 250×250), resized: the fallback when no face is found."""
    w, h = image.size
    return image.crop((w * 0.2, h * 0.2, w * 0.8, h * 0.8)).resize((size, size), Image.BILINEAR)


class FaceEmbedder:
    """Detect + align + embed. ``detect=False`` treats each image as one pre-cropped face (faces, dogs).

    Args:
        embedder: the model; its ``align`` picks the crop (``arcface112`` → ArcFace's 5-point template, ``dlib150`` →
            dlib's face chip, else FaceNet's margin crop).
        detect: run MTCNN; False embeds whole images; None (default) follows the model (``align != "none"``).
        margin: pixels of the output added around the MTCNN box (default FaceNet's 32 at 160 px, i.e. 20 %).
    """

    def __init__(self, embedder: Embedder, detect: bool | None = None, margin: float | None = None,
                 mtcnn: MTCNN | None = None) -> None:
        self.embedder = embedder
        detect = embedder.align != "none" if detect is None else detect
        self.detect = detect
        self.margin = margin if margin is not None else 0.2 * embedder.image_size
        self.mode = {"arcface112": "similarity", "dlib150": "dlib"}.get(embedder.align, "margin")
        self.mtcnn = (mtcnn or MTCNN()) if detect else None
        self.detect_side: int | None = DETECT_SIDE if detect else None  # photos are reduced to this for detection

    def _cut(self, image: Image.Image, det: Detections, k: int) -> Image.Image:
        return self._cut_first(image, Detections(det.boxes[k : k + 1], det.probs[k : k + 1], det.landmarks[k : k + 1]), 1)[0]

    def _cut_first(self, image: Image.Image, det: Detections, n: int) -> list[Image.Image]:
        """Crops of the first ``n`` faces of ``det``, the photo read once for all of them (not once per face)."""
        size = self.embedder.image_size
        if n == 0:
            return []
        if self.mode == "dlib":  # dlib's chip (padding 0.25) from MTCNN's points, scaled to the model's input
            return [similarity_align(image, det.landmarks[k], size, DLIB150_TEMPLATE * (size / 150)) for k in range(n)]
        first = Detections(det.boxes[:n], det.probs[:n], det.landmarks[:n])
        return self.mtcnn.crop(image, first, self.mode, size, self.margin)  # type: ignore[union-attr, arg-type]

    def crops(self, image: Image.Image, all_faces: bool = True) -> list[FaceCrop]:
        """Face crops of one RGB image, largest first (only the largest with ``all_faces=False``)."""
        return self.crops_many([image], all_faces)[0]

    def crops_many(self, images: Sequence[Image.Image], all_faces: bool | Sequence[bool] = True) -> list[list[FaceCrop]]:
        """``crops`` of several images with one batched MTCNN call (``all_faces`` per image or for all)."""
        flags = [all_faces] * len(images) if isinstance(all_faces, bool) else list(all_faces)
        if self.mtcnn is None:
            return [[FaceCrop(im.resize((self.embedder.image_size,) * 2, Image.BILINEAR), None)] for im in images]
        dets = self.mtcnn.detect(list(images)) if images else []
        out = []
        for im, det, every in zip(images, dets, flags):
            n = len(det) if every else min(1, len(det))
            out.append(in_original(im, [FaceCrop(crop, [round(float(v), 1) for v in det.boxes[i]], float(det.probs[i]),
                                                 landmarks=np.round(det.landmarks[i].astype(float), 1).tolist())
                                        for i, crop in enumerate(self._cut_first(im, det, n))]))
        return out

    def one_face(self, images: Sequence[Image.Image], policy: Policy = "center") -> tuple[list[Image.Image], list[int]]:
        """One crop per image (the face ``policy`` picks, as ``faceprint align``); images without one get
        ``center_crop``. Returns the crops and the indices of those fallbacks."""
        size = self.embedder.image_size
        if self.mtcnn is None:
            return [im.resize((size, size), Image.BILINEAR) for im in images], []
        crops, fallbacks = [], []
        for i, (image, det) in enumerate(zip(images, self.mtcnn.detect(list(images)) if images else [])):
            k = choose_face(det, image.size, policy)
            if k is None:
                fallbacks.append(i)
                crops.append(center_crop(image, size))
            else:
                crops.append(self._cut(image, det, k))
        return crops, fallbacks

    def embed_crops(self, crops: list[FaceCrop]) -> np.ndarray:
        """Embeddings of face crops, one row each."""
        if not crops:
            return np.zeros((0, self.embedder.dim), np.float32)
        return self.embedder.embed([c.image for c in crops])

    def embed_views(self, paths: Sequence[Path], batch_size: int = 16, on_batch: Callable[[int], None] | None = None,
                    batches: Iterable[tuple[int, list[Image.Image], list[Path]]] | None = None,
                    ) -> tuple[torch.Tensor, torch.Tensor, list[Path], list[tuple[Path, str]]]:
        """Embeddings of each file's ``one_face`` crop and of its mirror image: (plain, mirrored, ok paths, failed).

        Unreadable files are skipped and listed; paths that fell back to the centre crop are kept in
        ``self.no_face`` (reset on each call). ``batches`` replaces reading ``paths``: (files done, RGB images, their
        paths) already decoded elsewhere (the bulk runner decodes in threads).
        """
        self.no_face: list[Path] = []
        plain, mirrored, ok, failed = [], [], [], []
        for done, images, names in batches if batches is not None else read_batches(paths, batch_size, failed):
            crops, fallbacks = self.one_face(images)
            self.no_face += [names[k] for k in fallbacks]
            if crops:
                views = self.views(crops)
                plain.append(views[0])
                mirrored.append(views[1])
                ok += names
            if on_batch is not None:
                on_batch(done)
        empty = torch.zeros(0, self.embedder.dim)
        return (torch.cat(plain) if plain else empty), (torch.cat(mirrored) if mirrored else empty), ok, failed

    def views(self, crops: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of face crops and of their mirror images, in one preprocessing pass."""
        x = self.embedder.preprocess(torch.stack([pil_to_uint8(c, self.embedder.image_size) for c in crops]))
        return self.embedder(x), self.embedder(x.flip(-1))

    def embed_paths(self, paths: Sequence[Path], batch_size: int = 16, flip: bool = False,
                    on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
        """One embedding per image file (its ``one_face`` crop; with ``flip``, by the flip rule)."""
        plain, mirrored, ok, failed = self.embed_views(paths, batch_size, on_batch)
        emb = flip_combine(plain, mirrored) if flip else plain
        return emb.float().numpy(), ok, failed

    def load(self, source: str | Path | bytes) -> Image.Image:
        """An RGB image from a path or raw bytes, reduced for detection by the one rule (``detect_side``; raises
        ImageLoadError for bad data). Crops of it give boxes in the original's pixels."""
        if isinstance(source, bytes):
            return decode_bytes(source, max_side=self.detect_side)
        return load_rgb(source, max_side=self.detect_side)

    def decode(self, data: bytes, name: str) -> Image.Image:
        """A photo file's bytes (any format Pillow reads), reduced for detection by the one rule."""
        return decode_photo(data, name, self.detect_side)


def read_batches(paths: Sequence[Path], batch_size: int, failed: list[tuple[Path, str]],
                 ) -> Iterator[tuple[int, list[Image.Image], list[Path]]]:
    """(files read so far, RGB images, their paths) per batch; unreadable files go to ``failed`` with the reason."""
    for i in range(0, len(paths), batch_size):
        images, names = [], []
        for p in paths[i : i + batch_size]:
            try:
                images.append(load_rgb(p))
                names.append(Path(p))
            except ImageLoadError as exc:
                failed.append((Path(p), str(exc)))
        yield min(i + batch_size, len(paths)), images, names


def thumbnail(crop: Image.Image, size: int = 96) -> bytes:
    """A small JPEG of a face crop."""
    buf = io.BytesIO()
    to_rgb(crop).resize((size, size), Image.BILINEAR).save(buf, format="JPEG", quality=85)
    return buf.getvalue()
