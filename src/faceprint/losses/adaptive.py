"""The adapted triplet loss (Yu et al., ECCV 2018): triplet loss plus a class-mean matching term.

L = L_triplet + λ · Σ_c D(μ_c(batch), μ_c(selected)), where μ_c(batch) is the mean embedding of
class c over the whole batch and μ_c(selected) its mean over the members of the mined triplets.
The matching term is computed in torch, so it has a gradient (the reference implementation's
NumPy term did not; SPEC §1.4), and the argument-shift and invalid-index bugs are not copied.
"""

from __future__ import annotations

from typing import Literal

import torch

from faceprint.distances import DistanceName, safe_sqrt
from faceprint.losses.base import LossResult
from faceprint.losses.triplet_margin import TripletMarginLoss
from faceprint.miners.base import BaseMiner, Triplets, check_embeddings
from faceprint.miners.batch_hard import BatchHardMiner

__all__ = ["AdaptiveTripletLoss", "class_mean_mismatch"]

MatchNorm = Literal["l2", "sq_l2"]
Members = Literal["pn", "apn"]


def class_mean_mismatch(embeddings: torch.Tensor, labels: torch.Tensor, triplets: Triplets,
                        norm: MatchNorm = "l2", members: Members = "pn") -> torch.Tensor:
    """Σ over classes present in the selected set of D(batch class mean, selected-set class mean)."""
    a, p, n = triplets
    picked = torch.cat([p, n] if members == "pn" else [a, p, n])
    if picked.numel() == 0:
        return embeddings.sum() * 0.0
    classes, inv = torch.unique(labels[picked], return_inverse=True)
    dim = embeddings.shape[1]
    sel_sum = torch.zeros(len(classes), dim, dtype=embeddings.dtype, device=embeddings.device).index_add(0, inv, embeddings[picked])
    sel_cnt = torch.bincount(inv, minlength=len(classes)).to(embeddings.dtype)
    in_sel = (labels[:, None] == classes[None, :])  # (B, C)
    batch_sum = in_sel.to(embeddings.dtype).T @ embeddings
    batch_cnt = in_sel.sum(dim=0).to(embeddings.dtype)
    diff = batch_sum / batch_cnt[:, None] - sel_sum / sel_cnt[:, None]
    d2 = (diff * diff).sum(dim=1)
    return (safe_sqrt(d2) if norm == "l2" else d2).sum()


class AdaptiveTripletLoss:
    """Triplet loss over mined triplets (batch-hard by default) plus λ times the class-mean mismatch.

    Args:
        margin: triplet margin.
        lambda_: weight of the matching term.
        match_norm: ``l2`` (as the reference) or ``sq_l2``.
        match_members: which members of the selected triplets form μ(selected): ``pn`` (positives and
            negatives, as the reference) or ``apn`` (anchors too).
    """

    def __init__(
        self, margin: float = 0.2, lambda_: float = 1.0, distance: DistanceName = "squared_l2",
        match_norm: MatchNorm = "l2", match_members: Members = "pn", miner: BaseMiner | None = None, soft: bool = False,
    ) -> None:
        if match_norm not in ("l2", "sq_l2") or match_members not in ("pn", "apn"):
            raise ValueError(f"bad adaptive options match_norm={match_norm!r} match_members={match_members!r}")
        self.triplet = TripletMarginLoss(margin, distance, "mean", soft)
        self.miner = miner or BatchHardMiner(distance)
        self.lambda_, self.match_norm, self.match_members = lambda_, match_norm, match_members

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor, triplets: Triplets | None = None) -> LossResult:
        check_embeddings(embeddings, labels)
        triplets = triplets if triplets is not None else self.miner(embeddings, labels)
        base = self.triplet(embeddings, labels, triplets)
        match = class_mean_mismatch(embeddings, labels, triplets, self.match_norm, self.match_members)
        return LossResult(base.loss + self.lambda_ * match, base.n_triplets, base.n_active, base.mean_ap, base.mean_an,
                          base.spread, {"match": float(match.detach()), "triplet": float(base.loss.detach())})
