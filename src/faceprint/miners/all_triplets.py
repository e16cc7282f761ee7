"""All valid triplets of a batch (the batch-all strategy)."""

from __future__ import annotations

import torch

from faceprint.miners.base import BaseMiner, Triplets, label_masks

__all__ = ["AllTripletsMiner"]


class AllTripletsMiner(BaseMiner):
    """Every (a, p, n) with label(a) = label(p), a != p and label(n) != label(a), in lexicographic order."""

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        pos_mask, neg_mask = label_masks(labels)
        valid = pos_mask[:, :, None] & neg_mask[:, None, :]
        a, p, n = torch.nonzero(valid, as_tuple=True)
        return a, p, n
