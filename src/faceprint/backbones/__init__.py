"""Backbone registry: ``create_backbone(name, embedding_dim=...)`` and ``list_backbones()``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faceprint.backbones.alexnet import AlexNet
from faceprint.backbones.base import EmbeddingHead, EmbeddingNet
from faceprint.backbones.dlib_resnet import DlibResNet
from faceprint.backbones.inception_resnet_v1 import InceptionResnetV1
from faceprint.backbones.inception_v3 import InceptionV3
from faceprint.backbones.mobilefacenet import MobileFaceNet
from faceprint.backbones.resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from faceprint.backbones.small_cnn import SmallCNN

__all__ = ["BackboneSpec", "EmbeddingHead", "EmbeddingNet", "backbone_spec", "create_backbone", "list_backbones"]


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and the input size it is usually trained at."""

    factory: Callable[..., EmbeddingNet]
    input_size: int
    description: str


_BACKBONES: dict[str, BackboneSpec] = {
    "inception_resnet_v1": BackboneSpec(InceptionResnetV1, 160, "FaceNet's Inception-ResNet-v1 (facenet-pytorch names)"),
    "resnet18": BackboneSpec(resnet18, 112, "ResNet-18 with an embedding head"),
    "resnet34": BackboneSpec(resnet34, 112, "ResNet-34 with an embedding head"),
    "resnet50": BackboneSpec(resnet50, 112, "ResNet-50 with an embedding head"),
    "resnet101": BackboneSpec(resnet101, 112, "ResNet-101 with an embedding head"),
    "resnet152": BackboneSpec(resnet152, 112, "ResNet-152 with an embedding head"),
    "alexnet": BackboneSpec(AlexNet, 224, "AlexNet conv trunk (torchvision layout) with an embedding head"),
    "inception_v3": BackboneSpec(InceptionV3, 299, "Inception-v3 trunk (no auxiliary head) with an embedding head"),
    "mobilefacenet": BackboneSpec(MobileFaceNet, 112, "MobileFaceNet, ~1M parameters, for CPU and edge"),
    "small_cnn": BackboneSpec(SmallCNN, 64, "small 4-stage CNN for CPU training (demo, tests)"),
    "dlib_resnet": BackboneSpec(DlibResNet, 150, "dlib's face-recognition ResNet-29 (import-dlib loads its weights)"),
}


def list_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`."""
    return sorted(_BACKBONES)


def backbone_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name``, with a clear error for unknown names."""
    try:
        return _BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(list_backbones())}") from None


def create_backbone(name: str, embedding_dim: int = 128, **kwargs: object) -> EmbeddingNet:
    """Build backbone ``name`` producing L2-normalized ``embedding_dim``-d embeddings."""
    if embedding_dim < 1:
        raise ValueError(f"embedding_dim must be positive, got {embedding_dim}")
    return backbone_spec(name).factory(embedding_dim=embedding_dim, **kwargs)
