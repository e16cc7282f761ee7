"""facenet-pytorch ``InceptionResnetV1`` state dicts (``.pt``) into the cache."""

from __future__ import annotations

from pathlib import Path

import torch

from faceprint.backbones import create_backbone
from faceprint.home import file_sha256
from faceprint.models.known import WeightsError

__all__ = ["import_facenet_pytorch"]


def import_facenet_pytorch(path: str | Path, name: str = "vggface2") -> Path:
    """Import a facenet-pytorch ``InceptionResnetV1`` state dict, logits layer included if present."""
    from faceprint.models.weights_store import PretrainedInfo, save_pretrained

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable PyTorch state dict ({exc})") from exc
    if not isinstance(state, dict) or "last_linear.weight" not in state:
        raise WeightsError(f"{path}: not a facenet-pytorch InceptionResnetV1 state dict (no last_linear.weight)")
    dim = int(state["last_linear.weight"].shape[0])
    classes = int(state["logits.weight"].shape[0]) if "logits.weight" in state else None
    model = create_backbone("inception_resnet_v1", embedding_dim=dim, num_classes=classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: state dict does not match Inception-ResNet-v1: {str(exc)[:300]}") from exc
    info = PretrainedInfo(name=name, embedding_dim=dim, num_classes=classes, source=path.name,
                          source_sha256=file_sha256(path), notes="facenet-pytorch InceptionResnetV1 state dict")
    return save_pretrained(model.state_dict(), info)
