"""``FaceClassifier``: known identities from embeddings, with an "unknown" answer below a calibrated score.

The threshold is set so that a chosen fraction (``accept``) of known faces is accepted, measured on
held-out folds of the training embeddings, so no unseen identities are needed to calibrate it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from faceprint.classify.heads import Head, create_head
from faceprint.io import atomic_path

__all__ = ["UNKNOWN", "ClassifierError", "FaceClassifier", "Prediction"]

UNKNOWN = "unknown"


class ClassifierError(ValueError):
    """Bad training data or a damaged classifier file."""


@dataclass(frozen=True)
class Prediction:
    """The predicted identity (or ``unknown``), its score and the best known identity."""

    label: str
    score: float
    best: str


@dataclass
class FaceClassifier:
    """A fitted head over identity labels, its unknown threshold, and how to embed new images."""

    method: str
    labels: list[str]
    head: Head
    threshold: float
    accept: float
    embedder: dict[str, Any] = field(default_factory=dict)  # {"weights": name} or {"checkpoint": path}, image_size

    @classmethod
    def fit(cls, embeddings: np.ndarray, labels: list[str], method: str = "centroid", accept: float = 0.95,
            folds: int = 5, seed: int = 0, embedder: dict[str, Any] | None = None) -> FaceClassifier:
        """Fit on (N, D) embeddings with one label per row, and calibrate the unknown threshold."""
        x = torch.as_tensor(np.asarray(embeddings, np.float32))
        if x.ndim != 2 or len(x) != len(labels) or len(x) == 0:
            raise ClassifierError(f"need (N, D) embeddings and N labels, got {tuple(x.shape)} and {len(labels)}")
        if not torch.isfinite(x).all():
            raise ClassifierError("embeddings contain NaN or inf")
        if not 0 < accept <= 1:
            raise ClassifierError(f"accept must be in (0, 1], got {accept}")
        names = sorted(set(labels))
        if len(names) < 2 and method != "centroid":
            raise ClassifierError(f"method {method!r} needs at least 2 identities, got {len(names)}")
        y = torch.tensor([names.index(lb) for lb in labels])
        held_out = _held_out_scores(x, y, len(names), method, folds, seed)
        threshold = float(np.quantile(held_out, 1 - accept)) if len(held_out) else float("-inf")
        head = create_head(method, len(names)).fit(x, y)
        return cls(method, names, head, threshold, accept, dict(embedder or {}))

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, C) scores, columns in ``labels`` order."""
        with torch.no_grad():
            return self.head.scores(torch.as_tensor(np.asarray(embeddings, np.float32))).numpy()

    def predict(self, embeddings: np.ndarray) -> list[Prediction]:
        """The best identity per row, or ``unknown`` when its score is below the threshold."""
        s = self.scores(embeddings)
        best, top = s.argmax(1), s.max(1)
        return [Prediction(self.labels[b] if t >= self.threshold else UNKNOWN, float(t), self.labels[b])
                for b, t in zip(best, top)]

    def save(self, path: str | Path) -> Path:
        """One safetensors file: the head's tensors plus JSON metadata (atomic write)."""
        meta = {"method": self.method, "labels": self.labels, "threshold": self.threshold, "accept": self.accept,
                "embedder": self.embedder, "format": "faceprint-classifier-1"}
        with atomic_path(path) as tmp:
            save_file(self.head.tensors, str(tmp), metadata={"faceprint": json.dumps(meta)})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> FaceClassifier:
        """Read a file written by :meth:`save`."""
        try:
            with safe_open(str(path), framework="pt") as fh:  # one read: tensors and metadata
                meta = json.loads((fh.metadata() or {})["faceprint"])
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no iterator
            head = create_head(meta["method"], len(meta["labels"]))
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise ClassifierError(f"{path}: not a readable faceprint classifier ({exc})") from exc
        head.tensors = tensors
        return cls(meta["method"], meta["labels"], head, float(meta["threshold"]), float(meta["accept"]), meta["embedder"])


def _held_out_scores(x: torch.Tensor, y: torch.Tensor, n_classes: int, method: str, folds: int, seed: int) -> np.ndarray:
    """Top scores of correctly classified held-out rows (k folds; an identity's only image is never held out)."""
    rng = np.random.default_rng(seed)
    fold_of = np.full(len(y), -1)
    for c in range(n_classes):
        idx = np.flatnonzero(y.numpy() == c)
        if len(idx) >= 2:
            fold_of[rng.permutation(idx)] = np.arange(len(idx)) % folds
    out = []
    for f in range(folds):
        test = fold_of == f
        if not test.any():
            continue
        train = ~test
        head = create_head(method, n_classes).fit(x[train], y[train])
        with torch.no_grad():
            s = head.scores(x[test])
        correct = s.argmax(1) == y[test]
        out.append(s.max(1).values[correct].numpy())
    return np.concatenate(out) if out else np.zeros(0)
