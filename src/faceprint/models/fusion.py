"""Several models as one: ``--weights casia-webface+dlib-resnet`` embeds each face with every model, each cut its
own way from one detection, and concatenates the unit rows weighted by √wᵢ (weights summing to one), so a squared
distance is Σ wᵢ·dᵢ over the models' squared distances and stays on the 0..4 scale."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceprint.align import MTCNN
from faceprint.align.detect import Detections
from faceprint.align.detect import Policy, choose_face
from faceprint.models.embed import ImageInput
from faceprint.models.embedder import FUSIONS, Embedder
from faceprint.data.images import DETECT_SIDE
from faceprint.models.pipeline import FaceCrop, FaceEmbedder, center_crop, in_original, read_batches

__all__ = ["DEFAULT_FUSION_WEIGHTS", "FusedEmbedder", "FusedFaces", "default_fusion_weights", "face_embedder",
           "fusion_members", "parse_fusion"]

DEFAULT_FUSION_WEIGHTS = {("casia-webface", "dlib-resnet"): (0.1, 0.9), ("sface", "dlib-resnet"): (0.15, 0.85),
                          ("sface", "casia-webface"): (0.6, 0.4), ("sface", "dlib-resnet", "casia-webface"): (0.15, 0.8, 0.05)}
"""Weights LFW's training folds chose in benchmarks/lfw.py, the most frequent choice (every fold chose 0.1 for
casia-webface beside dlib-resnet; 9 of 10 chose 0.15 for sface beside it; sface + casia-webface: 0.6 in 5 of 10 (8 of
10 with flips), the rest 0.55–0.7); other fusions default to equal weights. ``a:0.3+b:0.7`` sets
them. dlib-resnet's squared distances are about 7× smaller, so its large weight evens the scales out."""


def default_fusion_weights(names: Sequence[str]) -> list[float] | None:
    """The weights DEFAULT_FUSION_WEIGHTS holds for these models, in the order given (any order is found)."""
    for key, weights in DEFAULT_FUSION_WEIGHTS.items():
        if sorted(key) == sorted(names) and len(set(names)) == len(names):
            by_name = dict(zip(key, weights))
            return [by_name[n] for n in names]
    return None


def fusion_members(spec: str) -> list[tuple[str, float]]:
    """``a+b`` or ``a:0.3+b:0.7`` → [(name, weight)], weights as ``FusedEmbedder.from_spec`` would use (summing to 1)."""
    parts = parse_fusion(spec)
    names = [n for n, _ in parts]
    given = [w for _, w in parts]
    if any(w is None for w in given) and not all(w is None for w in given):
        raise ValueError(f"give every weight or none in {spec!r}")
    weights = np.asarray(given if given[0] is not None else (default_fusion_weights(names) or [1.0] * len(names)), float)
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"a fusion needs non-negative weights with a positive sum, got {spec!r}")
    return [(n, float(w / weights.sum())) for n, w in zip(names, weights)]


def parse_fusion(spec: str) -> list[tuple[str, float | None]]:
    """``a+b`` or ``a:0.3+b:0.7`` → [(name, weight or None)]."""
    out = []
    for part in spec.split("+"):
        name, _, weight = part.partition(":")
        if not name:
            raise ValueError(f"bad fusion {spec!r}: write a+b or a:0.3+b:0.7")
        try:
            out.append((name, float(weight) if weight else None))
        except ValueError:
            raise ValueError(f"bad weight {weight!r} in {spec!r}") from None
    if len(out) < 2:
        raise ValueError(f"a fusion names two or more models, got {spec!r}")
    return out


class FusedEmbedder:
    """Member embedders and their weights; it stands where an ``Embedder`` does (name, dim, fingerprint, embed)."""

    def __init__(self, members: Sequence[Embedder], weights: Sequence[float]) -> None:
        w = np.asarray(weights, np.float64)
        if len(members) != len(w) or len(w) < 2 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"a fusion needs two or more models with non-negative weights, got {list(weights)}")
        self.members, self.weights = list(members), (w / w.sum()).tolist()
        self.name = "+".join(f"{m.name}:{wi:g}" for m, wi in zip(self.members, self.weights))
        self.dim = sum(m.dim for m in self.members)
        self.image_size, self.align, self.model = self.members[0].image_size, "fused", None

    @classmethod
    def from_spec(cls, spec: str, backend: str = "torch") -> FusedEmbedder:
        """``a+b`` (weights from DEFAULT_FUSION_WEIGHTS, else equal) or ``a:0.3+b:0.7``."""
        parts = parse_fusion(spec)
        names = tuple(n for n, _ in parts)
        given = [w for _, w in parts]
        if any(w is None for w in given) and not all(w is None for w in given):
            raise ValueError(f"give every weight or none in {spec!r}")
        weights = given if given[0] is not None else (default_fusion_weights(names) or [1.0] * len(names))
        return cls([Embedder.from_pretrained(n, backend=backend) for n in names], weights)  # type: ignore[arg-type]

    def combine(self, rows: Sequence[torch.Tensor | np.ndarray]) -> np.ndarray:
        """Concatenate the members' unit rows scaled by √wᵢ."""
        return np.concatenate([np.sqrt(w) * np.asarray(r, np.float32) for w, r in zip(self.weights, rows)], axis=1)

    def embed(self, images: Sequence[ImageInput], batch_size: int = 32, flip: bool = False) -> np.ndarray:
        """Whole images as face crops, each resized for its member."""
        if flip:
            plain, mirrored = self.embed(images, batch_size), self.embed([_mirror(i) for i in images], batch_size)
            both = np.concatenate([plain, mirrored], axis=1)
            return both / np.linalg.norm(both, axis=1, keepdims=True)
        return self.combine([m.embed(images, batch_size) for m in self.members])

    def embed_paths(self, paths: Sequence[Path], batch_size: int = 32, flip: bool = False,
                    on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
        """Whole image files (unreadable ones skipped and listed); rows as ``embed`` gives them."""
        images, ok, failed = [], [], []
        for _, batch, names in read_batches(paths, batch_size, failed):
            images += batch
            ok += names
        rows = self.embed(images, batch_size, flip) if images else np.zeros((0, self.dim), np.float32)
        if on_batch is not None:
            on_batch(len(paths))
        return rows, ok, failed

    def fingerprint(self) -> str:
        """A sha256 over the members' fingerprints and the weights."""
        digest = hashlib.sha256()
        for m, w in zip(self.members, self.weights):
            digest.update(f"{m.fingerprint()}:{w:.6f}".encode())
        return digest.hexdigest()


def _mirror(image: ImageInput) -> ImageInput:
    from faceprint.data.images import load_rgb

    img = load_rgb(image) if isinstance(image, (str, Path)) else image
    return img.transpose(Image.FLIP_LEFT_RIGHT) if isinstance(img, Image.Image) else np.ascontiguousarray(img[:, ::-1])


class FusedFaces(FaceEmbedder):
    """The detect → align → embed pipeline for a fusion: one MTCNN pass per photo, one crop per member (a member
    for ready crops gets the whole image), rows combined."""

    def __init__(self, fused: FusedEmbedder, detect: bool | None = None, mtcnn: MTCNN | None = None) -> None:
        self.embedder, self.fused = fused, fused  # type: ignore[assignment]
        self.detect = True if detect is None else detect
        self.mtcnn = (mtcnn or MTCNN()) if self.detect else None
        self.detect_side = DETECT_SIDE if self.detect else None
        self.parts = [FaceEmbedder(m, detect=self.detect, mtcnn=self.mtcnn) for m in fused.members]
        self.margin, self.mode = self.parts[0].margin, "fused"

    def _cuts(self, image: Image.Image, det: Detections | None, k: int | None) -> list[Image.Image]:
        """Each member's crop of face ``k`` (its centre crop when there is none; the whole image for ready-crop models)."""
        out = []
        for part in self.parts:
            size = part.embedder.image_size
            if det is None or part.embedder.align == "none":
                out.append(image.resize((size, size), Image.BILINEAR))
            elif k is None:
                out.append(center_crop(image, size))
            else:
                out.append(part._cut(image, det, k))
        return out

    def crops_many(self, images: Sequence[Image.Image], all_faces: bool | Sequence[bool] = True) -> list[list[FaceCrop]]:
        """One FaceCrop per face (the first member's crop, for thumbnails), each member's crop in ``parts``."""
        flags = [all_faces] * len(images) if isinstance(all_faces, bool) else list(all_faces)
        if self.mtcnn is None:
            return [[FaceCrop(im, None, parts=self._cuts(im, None, None))] for im in images]
        out = []
        for image, det, every in zip(images, self.mtcnn.detect(list(images)) if images else [], flags):
            n = len(det) if every else min(1, len(det))
            per_part = [[image.resize((p.embedder.image_size,) * 2, Image.BILINEAR)] * n if p.embedder.align == "none"
                        else p._cut_first(image, det, n) for p in self.parts]  # each member reads the photo once
            out.append(in_original(image, [FaceCrop(parts[0], [round(float(v), 1) for v in det.boxes[k]], float(det.probs[k]),
                                                    parts=list(parts)) for k, parts in enumerate(zip(*per_part))]))
        return out

    def one_face(self, images: Sequence[Image.Image], policy: Policy = "center") -> tuple[list[Image.Image], list[int]]:
        raise TypeError("a fusion cuts one crop per model: use crops() or embed_views()")

    def embed_crops(self, crops: list[FaceCrop]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.fused.dim), np.float32)
        return self.fused.combine([m.embed([c.parts[i] for c in crops]) for i, m in enumerate(self.fused.members)])  # type: ignore[index]

    def embed_views(self, paths: Sequence[Path], batch_size: int = 16, on_batch: Callable[[int], None] | None = None,
                    batches: Iterable[tuple[int, list[Image.Image], list[Path]]] | None = None,
                    ) -> tuple[torch.Tensor, torch.Tensor, list[Path], list[tuple[Path, str]]]:
        """Plain and mirrored combined rows of each file's face nearest the centre: one detection, a crop per member."""
        self.no_face: list[Path] = []
        plain, mirrored, ok, failed = [], [], [], []
        for done, images, names in batches if batches is not None else read_batches(paths, batch_size, failed):
            dets = self.mtcnn.detect(images) if self.mtcnn is not None and images else [None] * len(images)
            cuts = []
            for name, image, det in zip(names, images, dets):
                k = choose_face(det, image.size, "center") if det is not None else None
                if det is not None and k is None:
                    self.no_face.append(name)
                cuts.append(self._cuts(image, det, k))
            if cuts:
                views = [part.views([c[j] for c in cuts]) for j, part in enumerate(self.parts)]
                plain.append(torch.from_numpy(self.fused.combine([v[0] for v in views])))
                mirrored.append(torch.from_numpy(self.fused.combine([v[1] for v in views])))
                ok += names
            if on_batch is not None:
                on_batch(done)
        empty = torch.zeros(0, self.fused.dim)
        return (torch.cat(plain) if plain else empty), (torch.cat(mirrored) if mirrored else empty), ok, failed


def face_embedder(embedder: Embedder | FusedEmbedder, detect: bool | None = None, margin: float | None = None,
                  ) -> FaceEmbedder:
    """The pipeline for a model or a fusion (a fusion's members keep their own margins)."""
    if isinstance(embedder, FusedEmbedder):
        return FusedFaces(embedder, detect)
    return FaceEmbedder(embedder, detect=detect, margin=margin)


FUSIONS[:] = [FusedEmbedder.from_spec]  # Embedder.from_spec hands ``a+b`` specs here
