"""faceprint: FaceNet-style face embeddings with triplet loss and online mining.

The public names below load lazily (PEP 562), so ``import faceprint.serve`` or ``faceprint.models``
does not pull in the trainer or TensorBoard.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "faceprint.align": ["MTCNN"],
    "faceprint.backbones": ["EmbeddingNet", "create_backbone", "list_backbones"],
    "faceprint.config": ["Config", "ConfigError", "apply_overrides", "load_config"],
    "faceprint.data": ["DatasetError", "IdentityFolder", "ImageLoadError", "PKSampler", "load_rgb", "scan_identity_folder",
                       "split_by_identity", "write_synthetic_dataset"],
    "faceprint.distances": ["pairwise_distance"],
    "faceprint.models": ["CheckpointError", "Embedder", "FaceEmbedder", "WeightsError", "embed", "export_onnx", "infer",
                         "load_model", "pixel_embed_fn"],
    "faceprint.evaluation": ["evaluate_folder", "evaluate_identification", "evaluate_pair_list", "evaluate_verification",
                             "generate_pairs", "read_lfw_pairs"],
    "faceprint.losses": ["TripletMarginLoss"],
    "faceprint.miners": ["AllTripletsMiner", "BatchHardMiner", "create_miner"],
    "faceprint.training": ["Trainer", "TrainingError", "train"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'faceprint' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
