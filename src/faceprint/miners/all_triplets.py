"""All valid triplets, optionally filtered PML-style by ``type_of_triplets`` (all / hard / semihard / easy)."""

from __future__ import annotations

import math
from typing import Literal

import torch

from faceprint.distances import DistanceName
from faceprint.miners.base import BaseMiner, Triplets, concat_triplets, mask_rows_cols, pair_blocks

__all__ = ["AllTripletsMiner", "TripletMarginMiner", "TypeOfTriplets"]

TypeOfTriplets = Literal["all", "hard", "semihard", "easy"]


class TripletMarginMiner(BaseMiner):
    """Valid triplets whose margin m_t = d_an − d_ap satisfies the filter (as PML's TripletMarginMiner).

    ``all``: m_t <= margin; ``hard``: m_t <= 0; ``semihard``: 0 < m_t <= margin; ``easy``: m_t > margin.
    Triplets come in lexicographic (a, p, n) order, computed in blocks of anchor-positive pairs.
    """

    def __init__(self, margin: float = 0.2, type_of_triplets: TypeOfTriplets = "all", distance: DistanceName = "squared_l2") -> None:
        super().__init__(distance)
        if type_of_triplets not in ("all", "hard", "semihard", "easy"):
            raise ValueError(f"unknown type_of_triplets {type_of_triplets!r}; choose all, hard, semihard or easy")
        self.margin = margin
        self.type_of_triplets = type_of_triplets

    def keep(self, d_ap: torch.Tensor, d_an: torch.Tensor) -> torch.Tensor:
        """Which (pair, negative) entries pass the filter; d_ap is (P, 1), d_an is (P, B)."""
        m = d_an - d_ap
        if self.type_of_triplets == "easy":
            return m > self.margin
        keep = m <= self.margin if math.isfinite(self.margin) else torch.ones_like(m, dtype=torch.bool)
        if self.type_of_triplets == "hard":
            keep &= m <= 0
        elif self.type_of_triplets == "semihard":
            keep &= m > 0
        return keep

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None) -> Triplets:
        dist = self.distances(embeddings)
        parts = []
        for blk in pair_blocks(dist, labels):
            rows, negs = mask_rows_cols(blk.negatives & self.keep(blk.d_ap[:, None], blk.d_an))
            parts.append((blk.anchors[rows], blk.positives[rows], negs))
        return concat_triplets(parts, embeddings.device)


class AllTripletsMiner(TripletMarginMiner):
    """Every (a, p, n) with label(a) = label(p), a != p and label(n) != label(a)."""

    def __init__(self, distance: DistanceName = "squared_l2") -> None:
        super().__init__(margin=math.inf, type_of_triplets="all", distance=distance)

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None) -> Triplets:
        parts = []
        dist = torch.zeros(labels.shape[0], labels.shape[0], device=embeddings.device)  # only the masks matter
        for blk in pair_blocks(dist, labels):
            rows, negs = mask_rows_cols(blk.negatives)
            parts.append((blk.anchors[rows], blk.positives[rows], negs))
        return concat_triplets(parts, embeddings.device)
