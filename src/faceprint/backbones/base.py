"""The embedding-network interface every backbone implements."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EmbeddingHead", "EmbeddingNet"]


class EmbeddingNet(nn.Module):
    """A backbone split into ``forward_features`` (pooled features) and ``forward_head`` (embedding).

    ``forward`` returns L2-normalized embeddings of size ``embedding_dim``.
    """

    embedding_dim: int
    feature_dim: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
        return F.normalize(self.forward_head(self.forward_features(x)), p=2, dim=1, eps=1e-10)


class EmbeddingHead(nn.Module):
    """Linear projection (no bias) followed by batch norm, as in FaceNet's Inception-ResNet head."""

    def __init__(self, in_features: int, embedding_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim, eps=1e-3, momentum=0.1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(features))
