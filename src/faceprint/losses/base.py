"""What every loss returns: the loss tensor plus per-call diagnostics, and the collapse check."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch

__all__ = ["CollapseWarning", "LossResult", "embedding_spread", "make_result"]


class CollapseWarning(UserWarning):
    """The embeddings of a batch have (nearly) collapsed to one point."""


@dataclass(frozen=True)
class LossResult:
    """The loss tensor and the diagnostics the trainer logs."""

    loss: torch.Tensor
    n_triplets: int  # valid triplets the loss was computed over
    n_active: int  # of those, triplets with positive loss
    mean_ap: float
    mean_an: float
    spread: float = float("nan")  # mean squared distance of the embeddings to their batch mean
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def active_fraction(self) -> float:
        """Share of triplets that violate the margin (and so carry a gradient)."""
        return self.n_active / self.n_triplets if self.n_triplets else 0.0


def embedding_spread(embeddings: torch.Tensor) -> float:
    """E||x − mean(x)||²: 1 − ||mean||² for unit vectors, 0 when every embedding is the same point."""
    e = embeddings.detach().float()
    # E||x||² − ||E x||²: two passes, no (B, D) temporary from a broadcast subtraction
    return float(e.pow(2).sum(dim=1).mean() - e.mean(dim=0).pow(2).sum()) if e.shape[0] else float("nan")


def make_result(
    loss: torch.Tensor, embeddings: torch.Tensor, n_triplets: int, n_active: int, sum_ap: float, sum_an: float,
    collapse_threshold: float, extras: dict[str, float] | None = None,
) -> LossResult:
    """Assemble a LossResult and warn when the batch's spread is under ``collapse_threshold``."""
    spread = embedding_spread(embeddings)
    if embeddings.shape[0] > 1 and spread < collapse_threshold:
        warnings.warn(
            f"embeddings collapsed: batch spread {spread:.2e} < {collapse_threshold:g}; "
            "try semi-hard mining, a lower learning rate or a larger margin", CollapseWarning, stacklevel=3,
        )
    mean_ap = sum_ap / n_triplets if n_triplets else 0.0
    mean_an = sum_an / n_triplets if n_triplets else 0.0
    return LossResult(loss, n_triplets, n_active, mean_ap, mean_an, spread, extras or {})
