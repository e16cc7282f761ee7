"""Shared pieces of the miners: label masks, input checks and the miner base class."""

from __future__ import annotations

import torch

from faceprint.distances import DistanceName, pairwise_distance

__all__ = ["BaseMiner", "Triplets", "check_embeddings", "label_masks"]

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""Index tensors ``(anchors, positives, negatives)`` into the batch, each of shape (T,)."""


def check_embeddings(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise a clear error when embeddings and labels do not describe the same batch."""
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be (B, D), got shape {tuple(embeddings.shape)}")
    if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(f"labels must be (B,) with B={embeddings.shape[0]}, got shape {tuple(labels.shape)}")


def label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, B) masks: valid positives (same label, not self) and valid negatives (other label)."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def empty_triplets(device: torch.device) -> Triplets:
    """A triplet set with no members."""
    e = torch.empty(0, dtype=torch.long, device=device)
    return e, e.clone(), e.clone()


class BaseMiner:
    """A miner maps (embeddings, labels) to triplet indices; subclasses implement ``mine``."""

    def __init__(self, distance: DistanceName = "squared_l2") -> None:
        self.distance = distance

    def distances(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The (B, B) distance matrix this miner ranks by."""
        return pairwise_distance(embeddings, kind=self.distance)

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        raise NotImplementedError

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        check_embeddings(embeddings, labels)
        with torch.no_grad():
            return self.mine(embeddings.detach(), labels)
