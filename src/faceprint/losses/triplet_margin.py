"""The triplet margin loss of FaceNet: [d(a, p) - d(a, n) + margin]_+ over mined triplets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from faceprint.distances import DistanceName, paired_distance
from faceprint.miners.all_triplets import AllTripletsMiner
from faceprint.miners.base import Triplets, check_embeddings

__all__ = ["LossResult", "Reduction", "TripletMarginLoss"]

Reduction = Literal["mean", "mean_nonzero", "sum"]


@dataclass(frozen=True)
class LossResult:
    """The loss tensor and the per-call diagnostics the trainer logs."""

    loss: torch.Tensor
    n_triplets: int
    n_active: int
    mean_ap: float
    mean_an: float

    @property
    def active_fraction(self) -> float:
        """Share of triplets that violate the margin (and so carry a gradient)."""
        return self.n_active / self.n_triplets if self.n_triplets else 0.0


class TripletMarginLoss:
    """Triplet loss over given (or all valid) triplets.

    Args:
        margin: the alpha of FaceNet (0.2 for squared L2 on the unit sphere).
        distance: ``squared_l2`` (FaceNet), ``l2`` or ``cosine``.
        reduction: ``mean`` over all triplets, ``mean_nonzero`` over triplets with positive loss
            (what batch-all uses), or ``sum``.
        soft: use the soft margin log(1 + exp(x)) instead of the hinge.
    """

    def __init__(
        self,
        margin: float = 0.2,
        distance: DistanceName = "squared_l2",
        reduction: Reduction = "mean",
        soft: bool = False,
    ) -> None:
        if reduction not in ("mean", "mean_nonzero", "sum"):
            raise ValueError(f"unknown reduction {reduction!r}; choose mean, mean_nonzero or sum")
        self.margin = margin
        self.distance = distance
        self.reduction = reduction
        self.soft = soft

    def per_triplet(self, embeddings: torch.Tensor, triplets: Triplets) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-triplet losses and the anchor-positive and anchor-negative distances."""
        a, p, n = triplets
        d_ap = paired_distance(embeddings[a], embeddings[p], self.distance)
        d_an = paired_distance(embeddings[a], embeddings[n], self.distance)
        x = d_ap - d_an + self.margin
        losses = F.softplus(x) if self.soft else F.relu(x)
        return losses, d_ap, d_an

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor, triplets: Triplets | None = None) -> LossResult:
        check_embeddings(embeddings, labels)
        if triplets is None:
            triplets = AllTripletsMiner(self.distance)(embeddings, labels)
        losses, d_ap, d_an = self.per_triplet(embeddings, triplets)
        n_triplets = int(losses.numel())
        active = losses > 1e-16
        n_active = int(active.sum())
        if n_triplets == 0:
            loss = embeddings.sum() * 0.0  # keeps the graph so backward() still works
        elif self.reduction == "sum":
            loss = losses.sum()
        elif self.reduction == "mean_nonzero":
            loss = losses.sum() / max(n_active, 1)
        else:
            loss = losses.mean()
        mean_ap = float(d_ap.detach().mean()) if n_triplets else 0.0
        mean_an = float(d_an.detach().mean()) if n_triplets else 0.0
        return LossResult(loss, n_triplets, n_active, mean_ap, mean_an)
