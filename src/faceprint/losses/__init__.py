"""Embedding losses: each takes embeddings, labels and optional mined triplet indices."""

from __future__ import annotations

from faceprint.losses.adaptive import AdaptiveTripletLoss, class_mean_mismatch
from faceprint.losses.base import CollapseWarning, LossResult, embedding_spread
from faceprint.losses.batch_hard import BatchHardTripletLoss
from faceprint.losses.triplet_margin import Reduction, TripletMarginLoss

__all__ = [
    "AdaptiveTripletLoss", "BatchHardTripletLoss", "CollapseWarning", "LossResult", "Reduction", "TripletMarginLoss",
    "class_mean_mismatch", "embedding_spread",
]
