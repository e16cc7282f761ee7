"""Online triplet miners: each maps (embeddings, labels) to index tensors (anchors, positives, negatives)."""

from faceprint.miners.all_triplets import AllTripletsMiner
from faceprint.miners.base import BaseMiner, Triplets, label_masks
from faceprint.miners.batch_hard import BatchHardMiner

__all__ = ["AllTripletsMiner", "BaseMiner", "BatchHardMiner", "Triplets", "create_miner", "label_masks", "list_miners"]

_MINERS = {"batch_hard": BatchHardMiner, "batch_all": AllTripletsMiner}


def list_miners() -> list[str]:
    """Names accepted by :func:`create_miner`."""
    return sorted(_MINERS)


def create_miner(name: str, distance: str = "squared_l2") -> BaseMiner:
    """Build a miner by name (``batch_hard``, ``batch_all``)."""
    if name not in _MINERS:
        raise ValueError(f"unknown miner {name!r}; known: {', '.join(list_miners())}")
    return _MINERS[name](distance=distance)  # type: ignore[arg-type]
