"""The batch-hard triplet loss (Hermans et al. 2017): mean over anchors of the hardest triplet's loss."""

from __future__ import annotations

import torch

from faceprint.distances import DistanceName
from faceprint.losses.base import LossResult
from faceprint.losses.triplet_margin import TripletMarginLoss
from faceprint.miners.base import Triplets
from faceprint.miners.batch_hard import BatchHardMiner

__all__ = ["BatchHardTripletLoss"]


class BatchHardTripletLoss:
    """Mine batch-hard triplets and average their (hinge or soft-margin) loss over the anchors.

    Anchors without a positive or a negative in the batch are left out (the reference TF code
    counted them as [m − d_an]_+ with a fake zero-distance positive; SPEC §1.3).
    """

    def __init__(self, margin: float = 0.2, distance: DistanceName = "squared_l2", soft: bool = False) -> None:
        self.miner = BatchHardMiner(distance)
        self.triplet = TripletMarginLoss(margin, distance, "mean", soft)

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor, triplets: Triplets | None = None) -> LossResult:
        return self.triplet(embeddings, labels, triplets if triplets is not None else self.miner(embeddings, labels))
