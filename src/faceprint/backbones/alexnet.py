"""AlexNet (Krizhevsky et al. 2012, torchvision's single-tower layout) with an embedding head."""

from __future__ import annotations

import torch
from torch import nn

from faceprint.backbones.base import EmbeddingHead, EmbeddingNet

__all__ = ["AlexNet"]


class AlexNet(EmbeddingNet):
    """Five conv layers (2.47M parameters), adaptive 6×6 pooling, then the embedding head.

    The three 4096-wide classifier layers are replaced by the head (a 9216 → D projection).
    Any input of at least 63 px works; 224 is usual.
    """

    def __init__(self, embedding_dim: int = 128) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.feature_dim = 256 * 6 * 6
        self.dropout = nn.Dropout(0.5)
        self.head = EmbeddingHead(self.feature_dim, embedding_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.pool(self.features(x)).flatten(1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)
