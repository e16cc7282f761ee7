"""Distance-weighted negative sampling (Wu et al. 2017, "Sampling Matters in Deep Embedding Learning")."""

from __future__ import annotations

import torch

from faceprint.miners.base import BaseMiner, Triplets, concat_triplets, pair_blocks

__all__ = ["DistanceWeightedMiner", "distance_weights"]


def distance_weights(d: torch.Tensor, dim: int, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4) -> torch.Tensor:
    """Unnormalized sampling weights 1/q(d) for L2 distances ``d`` between points on the unit sphere.

    q(d) ∝ d^(n−2) (1 − d²/4)^((n−3)/2) is the density of pairwise distances of uniform points on
    S^(n−1); distances are clipped below at ``cutoff`` and weights beyond ``nonzero_loss_cutoff``
    (where the margin loss is zero anyway) are 0. Each row is scaled so its largest weight is 1.
    """
    d = d.clamp_min(cutoff)
    log_w = (2.0 - dim) * torch.log(d) - ((dim - 3) / 2.0) * torch.log((1.0 - 0.25 * d * d).clamp_min(1e-8))
    log_w = torch.where(d < nonzero_loss_cutoff, log_w, torch.full_like(log_w, -float("inf")))
    row_max = log_w.max(dim=1, keepdim=True).values
    return torch.exp(log_w - torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)))


class DistanceWeightedMiner(BaseMiner):
    """For each anchor-positive pair, one negative sampled with probability ∝ 1/q(d_an).

    Uses plain L2 distance on L2-normalized embeddings (the sphere the weights assume). A pair whose
    negatives all lie beyond ``nonzero_loss_cutoff`` samples uniformly among its negatives.
    """

    def __init__(self, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4) -> None:
        super().__init__("l2")
        self.cutoff, self.nonzero_loss_cutoff = cutoff, nonzero_loss_cutoff

    def probabilities(self, embeddings: torch.Tensor, labels: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per block: (anchors, positives, (P, B) sampling probabilities over the batch)."""
        emb = torch.nn.functional.normalize(embeddings, dim=1)
        dist = self.distances(emb)
        out = []
        for blk in pair_blocks(dist, labels):
            w = distance_weights(blk.d_an, emb.shape[1], self.cutoff, self.nonzero_loss_cutoff) * blk.negatives
            empty = w.sum(dim=1, keepdim=True) == 0
            w = torch.where(empty, blk.negatives.to(w.dtype), w)
            out.append((blk.anchors, blk.positives, w / w.sum(dim=1, keepdim=True).clamp_min(1e-30)))
        return out

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None) -> Triplets:
        parts = []
        for anchors, positives, prob in self.probabilities(embeddings, labels):
            has = prob.sum(dim=1) > 0
            if has.any():
                n = torch.multinomial(prob[has].cpu(), 1, generator=generator).flatten().to(anchors.device)
                parts.append((anchors[has], positives[has], n))
        return concat_triplets(parts, embeddings.device)
