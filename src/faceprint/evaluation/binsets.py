"""The field's benchmark protocol on ``.bin`` sets: 10 contiguous folds, the threshold chosen on the other nine,
optional flip; every image is decoded from the set's bytes, never written to disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faceprint.data.binset import BinSet, write_bin
from faceprint.data.images import ImageLoadError, decode_bytes
from faceprint.evaluation.pairs import PairList
from faceprint.evaluation.report import EvalReport
from faceprint.evaluation.verification import evaluate_verification
from faceprint.models.embed import flip_combine
from faceprint.models.embedder import Embedder
from faceprint.models.pipeline import FaceEmbedder

__all__ = ["evaluate_bin", "write_pairs_bin"]


def _batches(bins: BinSet, batch_size: int, failed: list[tuple[Path, str]],
             ) -> Iterator[tuple[int, list[Image.Image], list[Path]]]:
    for i in range(0, len(bins.images), batch_size):
        images, names = [], []
        for k in range(i, min(i + batch_size, len(bins.images))):
            name = Path(f"{bins.name}#{k}")
            try:
                images.append(decode_bytes(bins.images[k], str(name)))
                names.append(name)
            except ImageLoadError as exc:
                failed.append((name, str(exc)))
        yield min(i + batch_size, len(bins.images)), images, names


def evaluate_bin(fn: Any, bins: BinSet, flip: bool = False, batch_size: int = 64,
                 on_batch: Callable[[int], None] | None = None) -> EvalReport:
    """``fn``: an ``Embedder`` (images are the set's aligned crops, resized to its input) or a ``FaceEmbedder``
    (detect and cut each image its own way). A pair with an undecodable image is dropped and listed."""
    faces = fn if isinstance(fn, FaceEmbedder) else FaceEmbedder(fn, detect=False) if isinstance(fn, Embedder) else None
    if faces is None:
        raise TypeError(f"evaluate_bin needs an Embedder or FaceEmbedder, got {type(fn).__name__}")
    failed: list[tuple[Path, str]] = []
    plain, mirrored, ok, more = faces.embed_views([], batch_size, on_batch, batches=_batches(bins, batch_size, failed))
    emb = (flip_combine(plain, mirrored) if flip else plain).float().numpy()
    row = {int(p.name.rsplit("#", 1)[1]): i for i, p in enumerate(ok)}
    keep = [k for k in range(len(bins)) if 2 * k in row and 2 * k + 1 in row]
    a = np.array([row[2 * k] for k in keep], dtype=int)
    b = np.array([row[2 * k + 1] for k in keep], dtype=int)
    same = np.asarray(bins.issame, bool)[keep]
    result = evaluate_verification(emb[a], emb[b], same, n_folds=10)
    return EvalReport(result, None, len(a), len(ok), failed + more)


def write_pairs_bin(pairs: PairList, out: str | Path) -> Path:
    """Our own pair set as a ``.bin``: each pair's two image files, byte for byte, in the pairs' (fold) order."""
    images = [Path(p).read_bytes() for k in range(len(pairs)) for p in (pairs.first[k], pairs.second[k])]
    return write_bin(out, images, [bool(s) for s in pairs.issame])
