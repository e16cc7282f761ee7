"""Embedding losses: each takes embeddings, labels and optional mined triplet indices."""

from faceprint.losses.triplet_margin import LossResult, Reduction, TripletMarginLoss

__all__ = ["LossResult", "Reduction", "TripletMarginLoss"]
