"""A small, fast CPU network for the demo and tests (about 1.2M parameters, 64×64 input)."""

from __future__ import annotations

import torch
from torch import nn

from faceprint.backbones.base import EmbeddingHead, EmbeddingNet

__all__ = ["SmallCNN"]


def _stage(cin: int, cout: int) -> nn.Sequential:
    """Downsample by 2 then refine: two 3×3 conv + BN + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
    )


class SmallCNN(EmbeddingNet):
    """Stem + three stages (32→64→128→256 channels), global average pool, embedding head."""

    def __init__(self, embedding_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.stages = nn.Sequential(_stage(w, 2 * w), _stage(2 * w, 4 * w), _stage(4 * w, 8 * w))
        self.feature_dim = 8 * w
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = EmbeddingHead(self.feature_dim, embedding_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)
