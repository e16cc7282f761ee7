"""Inception-v3 (Szegedy et al. 2016) trunk, written here (no torchvision), with an embedding head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceprint.backbones.base import EmbeddingHead, EmbeddingNet

__all__ = ["InceptionV3"]


def _conv(cin: int, cout: int, k: int | tuple[int, int], s: int = 1, p: int | tuple[int, int] = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout, eps=0.001), nn.ReLU(inplace=True))


def _pool_branch(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.AvgPool2d(3, 1, 1), _conv(cin, cout, 1))


class _Mixed(nn.Module):
    """Branches applied to the same input and concatenated on channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class _Split(nn.Module):
    """A stem followed by two parallel heads whose outputs are concatenated (Inception-E's 3×3 split)."""

    def __init__(self, stem: nn.Module, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.stem, self.a, self.b = stem, a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return torch.cat([self.a(x), self.b(x)], dim=1)


def _block_a(cin: int, pool: int) -> _Mixed:
    return _Mixed(_conv(cin, 64, 1), nn.Sequential(_conv(cin, 48, 1), _conv(48, 64, 5, p=2)),
                  nn.Sequential(_conv(cin, 64, 1), _conv(64, 96, 3, p=1), _conv(96, 96, 3, p=1)), _pool_branch(cin, pool))


def _block_b(cin: int) -> _Mixed:
    return _Mixed(_conv(cin, 384, 3, 2), nn.Sequential(_conv(cin, 64, 1), _conv(64, 96, 3, p=1), _conv(96, 96, 3, 2)),
                  nn.MaxPool2d(3, 2))


def _block_c(cin: int, c7: int) -> _Mixed:
    return _Mixed(
        _conv(cin, 192, 1),
        nn.Sequential(_conv(cin, c7, 1), _conv(c7, c7, (1, 7), p=(0, 3)), _conv(c7, 192, (7, 1), p=(3, 0))),
        nn.Sequential(_conv(cin, c7, 1), _conv(c7, c7, (7, 1), p=(3, 0)), _conv(c7, c7, (1, 7), p=(0, 3)),
                      _conv(c7, c7, (7, 1), p=(3, 0)), _conv(c7, 192, (1, 7), p=(0, 3))),
        _pool_branch(cin, 192),
    )


def _block_d(cin: int) -> _Mixed:
    return _Mixed(nn.Sequential(_conv(cin, 192, 1), _conv(192, 320, 3, 2)),
                  nn.Sequential(_conv(cin, 192, 1), _conv(192, 192, (1, 7), p=(0, 3)), _conv(192, 192, (7, 1), p=(3, 0)),
                                _conv(192, 192, 3, 2)),
                  nn.MaxPool2d(3, 2))


def _block_e(cin: int) -> _Mixed:
    def split(stem: nn.Module) -> _Split:
        return _Split(stem, _conv(384, 384, (1, 3), p=(0, 1)), _conv(384, 384, (3, 1), p=(1, 0)))

    return _Mixed(_conv(cin, 320, 1), split(_conv(cin, 384, 1)),
                  split(nn.Sequential(_conv(cin, 448, 1), _conv(448, 384, 3, p=1))), _pool_branch(cin, 192))


class InceptionV3(EmbeddingNet):
    """The 299×299 Inception-v3 trunk (no auxiliary classifier), global pool, embedding head; ≥ 75 px inputs."""

    def __init__(self, embedding_dim: int = 128) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(
            _conv(3, 32, 3, 2), _conv(32, 32, 3), _conv(32, 64, 3, p=1), nn.MaxPool2d(3, 2),
            _conv(64, 80, 1), _conv(80, 192, 3), nn.MaxPool2d(3, 2),
        )
        self.mixed = nn.Sequential(
            _block_a(192, 32), _block_a(256, 64), _block_a(288, 64), _block_b(288),
            _block_c(768, 128), _block_c(768, 160), _block_c(768, 160), _block_c(768, 192),
            _block_d(768), _block_e(1280), _block_e(2048),
        )
        self.feature_dim = 2048
        self.dropout = nn.Dropout(0.5)
        self.head = EmbeddingHead(2048, embedding_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(F.adaptive_avg_pool2d(self.mixed(self.stem(x)), 1).flatten(1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)
