"""Online triplet miners: each maps (embeddings, labels) to index tensors (anchors, positives, negatives)."""

from __future__ import annotations

from typing import Any

from faceprint.miners.all_triplets import AllTripletsMiner, TripletMarginMiner
from faceprint.miners.base import BaseMiner, Triplets, label_masks
from faceprint.miners.batch_hard import BatchHardMiner
from faceprint.miners.distance_weighted import DistanceWeightedMiner
from faceprint.miners.random_triplets import RandomTripletMiner
from faceprint.miners.semihard import SemiHardMiner

__all__ = [
    "AllTripletsMiner", "BaseMiner", "BatchHardMiner", "DistanceWeightedMiner", "RandomTripletMiner", "SemiHardMiner",
    "TripletMarginMiner", "Triplets", "create_miner", "label_masks", "list_miners",
]

MINER_NAMES = ("batch_all", "batch_hard", "random", "semihard", "semihard_vgg", "distance_weighted", "triplet_margin")


def list_miners() -> list[str]:
    """Names accepted by :func:`create_miner`."""
    return sorted(MINER_NAMES)


def create_miner(name: str, distance: str = "squared_l2", margin: float = 0.2, **options: Any) -> BaseMiner:
    """Build a miner by name.

    ``batch_all`` (every valid triplet), ``batch_hard``, ``random``, ``semihard`` (FaceNet rule,
    hardest candidate), ``semihard_vgg`` (davidsandberg: d_an − d_ap < α, random pick, pairs once),
    ``distance_weighted`` (Wu et al.), ``triplet_margin`` (PML filter, ``type_of_triplets`` option).
    """
    d: Any = distance
    if name == "batch_all":
        return AllTripletsMiner(d)
    if name == "batch_hard":
        return BatchHardMiner(d)
    if name == "random":
        return RandomTripletMiner(d)
    if name == "semihard":
        return SemiHardMiner(margin, "facenet", "hardest", options.get("fallback", "drop"), distance=d)
    if name == "semihard_vgg":
        return SemiHardMiner(margin, "vgg", "random", "drop", unique_pairs=True, distance=d)
    if name == "distance_weighted":
        return DistanceWeightedMiner()
    if name == "triplet_margin":
        return TripletMarginMiner(margin, options.get("type_of_triplets", "all"), d)
    raise ValueError(f"unknown miner {name!r}; known: {', '.join(list_miners())}")
