"""Semi-hard negatives for every anchor-positive pair: FaceNet's rule or davidsandberg's (VGG Face) rule."""

from __future__ import annotations

from typing import Literal

import torch

from faceprint.distances import DistanceName
from faceprint.miners.base import BaseMiner, Triplets, concat_triplets, masked_random_choice, pair_blocks

__all__ = ["SemiHardMiner"]

Rule = Literal["facenet", "vgg"]
Pick = Literal["hardest", "random"]
Fallback = Literal["drop", "hardest", "largest"]


class SemiHardMiner(BaseMiner):
    """One negative per anchor-positive pair.

    Args:
        margin: alpha.
        rule: ``facenet`` — candidates with d_ap < d_an < d_ap + alpha (Schroff et al. §3.2);
            ``vgg`` — candidates with d_an − d_ap < alpha, hard ones included (davidsandberg's
            ``select_triplets``).
        pick: ``hardest`` candidate (smallest d_an) or a uniformly ``random`` one (davidsandberg).
        fallback: when a pair has no candidate: ``drop`` the pair (davidsandberg; its loss would be
            zero under the FaceNet rule when every negative is beyond the margin), take the
            ``hardest`` negative, or the ``largest``-distance negative (TensorFlow's semihard loss).
        unique_pairs: enumerate each pair once (a < p), as davidsandberg does; else both orders.
    """

    def __init__(
        self, margin: float = 0.2, rule: Rule = "facenet", pick: Pick = "hardest", fallback: Fallback = "drop",
        unique_pairs: bool = False, distance: DistanceName = "squared_l2",
    ) -> None:
        super().__init__(distance)
        if rule not in ("facenet", "vgg") or pick not in ("hardest", "random") or fallback not in ("drop", "hardest", "largest"):
            raise ValueError(f"bad semi-hard options rule={rule!r} pick={pick!r} fallback={fallback!r}")
        self.margin, self.rule, self.pick, self.fallback, self.unique_pairs = margin, rule, pick, fallback, unique_pairs

    def candidates(self, d_ap: torch.Tensor, d_an: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """(P, B) mask of the negatives each pair may use under the rule."""
        if self.rule == "facenet":
            return negatives & (d_an > d_ap) & (d_an < d_ap + self.margin)
        return negatives & (d_an - d_ap < self.margin)

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None) -> Triplets:
        dist = self.distances(embeddings)
        parts = []
        for blk in pair_blocks(dist, labels, unique_pairs=self.unique_pairs):
            cand = self.candidates(blk.d_ap[:, None], blk.d_an, blk.negatives)
            has = cand.any(dim=1)
            chosen = self._choose(cand, blk.d_an, generator)
            if self.fallback != "drop":
                fill = torch.where(blk.negatives, blk.d_an, torch.full_like(blk.d_an, float("inf")))
                alt = fill.argmin(1) if self.fallback == "hardest" else torch.where(blk.negatives, blk.d_an, -1.0).argmax(1)
                chosen = torch.where(has, chosen, alt)
                has = blk.negatives.any(dim=1)
            parts.append((blk.anchors[has], blk.positives[has], chosen[has]))
        return concat_triplets(parts, embeddings.device)

    def _choose(self, cand: torch.Tensor, d_an: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.pick == "random":
            return masked_random_choice(cand, generator)
        return torch.where(cand, d_an, torch.full_like(d_an, float("inf"))).argmin(dim=1)
