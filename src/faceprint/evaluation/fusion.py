"""Score fusion of several models: a weighted sum of their squared distances, the weight chosen on training folds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceprint.evaluation.verification import VerificationResult, evaluate_distances, train_accuracy

__all__ = ["FusionResult", "evaluate_fusion", "fuse"]


@dataclass
class FusionResult:
    """The 10-fold figures of the fused distance and the weights each fold chose on its training folds."""

    verification: VerificationResult
    fold_weights: list[list[float]]


def fuse(distances: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Σ wᵢ·dᵢ over models' squared L2 distances of unit vectors (weights sum to 1, so the 0..4 scale holds).

    Equal to the squared distance of the concatenation [√w₁·e₁ ‖ √w₂·e₂ ‖ …] of unit embeddings.
    """
    return np.sum([w * np.asarray(d, np.float64) for w, d in zip(weights, distances)], axis=0)


def evaluate_fusion(distances: Sequence[np.ndarray], issame: np.ndarray, n_folds: int = 10,
                    grid: int = 20) -> FusionResult:
    """The protocol on fused distances of two models; each fold picks w in {0, 1/grid, …, 1} (w₁ = w, w₂ = 1 − w)
    by accuracy on its own training folds only, so the test fold never informs its weight."""
    if len(distances) != 2:
        raise ValueError(f"fusion is implemented for two models, got {len(distances)}")
    same = np.asarray(issame, bool)
    chosen: list[list[float]] = []

    def fold_distance(train: np.ndarray) -> np.ndarray:
        candidates = [(w, 1.0 - w) for w in np.linspace(0.0, 1.0, grid + 1)]
        scores = [train_accuracy(fuse([d[train] for d in distances], ws), same[train]) for ws in candidates]
        best = candidates[int(np.argmax(scores))]  # the first best (lowest w) on ties
        chosen.append([round(float(w), 4) for w in best])
        return fuse(distances, best)

    return FusionResult(evaluate_distances(fold_distance, same, n_folds), chosen)
