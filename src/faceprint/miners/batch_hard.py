"""Batch-hard mining (Hermans et al. 2017): for each anchor its farthest positive and nearest negative."""

from __future__ import annotations

import torch

from faceprint.miners.base import BaseMiner, Triplets, label_masks

__all__ = ["BatchHardMiner"]


class BatchHardMiner(BaseMiner):
    """One triplet per anchor that has both a positive and a negative in the batch.

    Ties go to the lowest index. Anchors without a positive (singletons) or without a negative
    (one-class batch) are left out rather than padded with invalid indices.
    """

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None) -> Triplets:
        dist = self.distances(embeddings)
        pos_mask, neg_mask = label_masks(labels)
        inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
        hardest_pos = torch.where(pos_mask, dist, -inf).argmax(dim=1)
        hardest_neg = torch.where(neg_mask, dist, inf).argmin(dim=1)
        keep = pos_mask.any(dim=1) & neg_mask.any(dim=1)
        anchors = torch.nonzero(keep).flatten()
        return anchors, hardest_pos[anchors], hardest_neg[anchors]
