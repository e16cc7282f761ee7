"""Pairwise distances between embeddings, each computed with one matrix product."""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["DistanceName", "pairwise_distance", "paired_distance", "safe_sqrt"]

DistanceName = Literal["squared_l2", "l2", "cosine"]


def _squared_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x||² − 2x·y + ||y||² as one matmul of padded matrices (the order torch.cdist uses, so the
    values, and hence mined triplets, agree bitwise with cdist-based code such as PML's)."""
    xx = x.pow(2).sum(dim=-1, keepdim=True)
    yy = y.pow(2).sum(dim=-1, keepdim=True)
    x_ = torch.cat([x.mul(-2), xx, torch.ones_like(xx)], dim=-1)
    y_ = torch.cat([y, torch.ones_like(yy), yy], dim=-1)
    d2 = x_.matmul(y_.mT)
    return d2.clamp_min(0.0) if d2.requires_grad else d2.clamp_min_(0.0)


def safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    """sqrt with a finite (zero) gradient where the squared distance is exactly zero."""
    zero = d2 == 0
    return torch.sqrt(d2 + zero.to(d2.dtype) * 1e-16) * (~zero).to(d2.dtype)


def pairwise_distance(x: torch.Tensor, y: torch.Tensor | None = None, kind: DistanceName = "squared_l2") -> torch.Tensor:
    """Distance matrix ``D[i, j] = d(x_i, y_j)`` (``y`` defaults to ``x``).

    ``cosine`` is ``1 - cos(x_i, y_j)``; ``l2`` has a finite gradient at zero distance.
    """
    y = x if y is None else y
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected two (N, D) matrices with the same D, got {tuple(x.shape)} and {tuple(y.shape)}")
    if kind == "squared_l2":
        return _squared_l2(x, y)
    if kind == "l2":
        d2 = _squared_l2(x, y)
        return safe_sqrt(d2) if d2.requires_grad else d2.sqrt_()
    if kind == "cosine":
        xn = torch.nn.functional.normalize(x, dim=1)
        yn = torch.nn.functional.normalize(y, dim=1)
        return 1.0 - xn @ yn.T
    raise ValueError(f"unknown distance {kind!r}; choose squared_l2, l2 or cosine")


def paired_distance(x: torch.Tensor, y: torch.Tensor, kind: DistanceName = "squared_l2") -> torch.Tensor:
    """Row-wise distance ``d(x_i, y_i)`` for two (N, D) tensors."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if kind == "cosine":
        return 1.0 - torch.nn.functional.cosine_similarity(x, y, dim=1)
    d2 = ((x - y) ** 2).sum(dim=1)
    if kind == "squared_l2":
        return d2
    if kind == "l2":
        return safe_sqrt(d2)
    raise ValueError(f"unknown distance {kind!r}; choose squared_l2, l2 or cosine")
