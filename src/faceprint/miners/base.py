"""Shared pieces of the miners: label masks, blockwise pair enumeration, input checks, the base class."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from faceprint.distances import DistanceName, pairwise_distance

__all__ = ["BaseMiner", "PairBlock", "Triplets", "check_embeddings", "empty_triplets", "label_masks", "pair_blocks"]

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""Index tensors ``(anchors, positives, negatives)`` into the batch, each of shape (T,)."""

MAX_BLOCK_ELEMENTS = 1 << 22  # entries of one (pairs × batch) block: ~16 MB of float32


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


class PairBlock:
    """A block of anchor-positive pairs with their distances and each anchor's row of distances."""

    __slots__ = ("anchors", "positives", "d_ap", "d_an", "negatives")

    def __init__(self, anchors: torch.Tensor, positives: torch.Tensor, dist: torch.Tensor, neg_mask: torch.Tensor) -> None:
        self.anchors, self.positives = anchors, positives
        self.d_ap = dist[anchors, positives]  # (P,)
        self.d_an = dist[anchors]  # (P, B): distance from each pair's anchor to every sample
        self.negatives = neg_mask[anchors]  # (P, B): which samples are valid negatives


def pair_blocks(
    dist: torch.Tensor, labels: torch.Tensor, unique_pairs: bool = False, max_elements: int | None = None,
) -> Iterator[PairBlock]:
    """All anchor-positive pairs in (a, p) order, in blocks small enough that P×B stays under ``max_elements``.

    This is how the miners avoid a B×B×B tensor: memory is O(B² + max_elements) whatever the batch.
    ``unique_pairs`` keeps only a < p (davidsandberg enumerates each pair once).
    """
    pos_mask, neg_mask = label_masks(labels)
    if unique_pairs:
        pos_mask = torch.triu(pos_mask, diagonal=1)
    pa, pp = torch.nonzero(pos_mask, as_tuple=True)
    step = max(1, (max_elements or MAX_BLOCK_ELEMENTS) // max(labels.shape[0], 1))
    for s in range(0, pa.shape[0], step):
        yield PairBlock(pa[s : s + step], pp[s : s + step], dist, neg_mask)


def concat_triplets(parts: list[Triplets], device: torch.device) -> Triplets:
    """Join per-block triplets (or return an empty set); a single block is returned without a copy."""
    if not parts:
        return empty_triplets(device)
    if len(parts) == 1:
        return parts[0]
    return tuple(torch.cat([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def mask_rows_cols(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the True entries of a 2-D mask, row-major.

    Same result as ``torch.nonzero(mask, as_tuple=True)``, about 2× faster on CPU: nonzero over the
    flat view, then one integer division.
    """
    flat = mask.reshape(-1).nonzero().squeeze(1)
    cols = mask.shape[1]
    return torch.div(flat, cols, rounding_mode="floor"), flat.remainder(cols)


class BaseMiner:
    """A miner maps (embeddings, labels) to triplet indices; subclasses implement ``mine``.

    Random miners draw from the ``generator`` given per call, so a trainer can make every step
    reproducible (and resumable) by seeding it from (seed, step).
    """

    def __init__(self, distance: DistanceName = "squared_l2") -> None:
        self.distance = distance

    def distances(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The (B, B) distance matrix this miner ranks by."""
        return pairwise_distance(embeddings, kind=self.distance)

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None) -> Triplets:
        raise NotImplementedError

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None) -> Triplets:
        check_embeddings(embeddings, labels)
        with torch.no_grad():
            return self.mine(embeddings.detach(), labels.to(embeddings.device), generator)


def masked_random_choice(mask: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """For each row, a uniformly random column among the True entries (rows with none give any index)."""
    scores = torch.rand(mask.shape, generator=generator, device="cpu").to(mask.device)
    return torch.where(mask, scores, torch.full_like(scores, -1.0)).argmax(dim=1)

