"""Online random triplets: for each anchor a uniformly random positive and negative from the batch."""

from __future__ import annotations

import torch

from faceprint.miners.base import BaseMiner, Triplets, label_masks, masked_random_choice

__all__ = ["RandomTripletMiner"]


class RandomTripletMiner(BaseMiner):
    """The no-selection baseline: one random valid triplet per anchor that has a positive and a negative."""

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None) -> Triplets:
        pos_mask, neg_mask = label_masks(labels)
        keep = pos_mask.any(dim=1) & neg_mask.any(dim=1)
        anchors = torch.nonzero(keep).flatten()
        p = masked_random_choice(pos_mask[anchors], generator)
        n = masked_random_choice(neg_mask[anchors], generator)
        return anchors, p, n
