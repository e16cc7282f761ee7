"""Brute-force reference implementations with plain Python loops: the oracles the vectorized code must match."""

from __future__ import annotations

import torch


def brute_distance(x: torch.Tensor, i: int, j: int, kind: str) -> float:
    if kind == "cosine":
        return float(1 - torch.dot(x[i], x[j]) / (x[i].norm() * x[j].norm()))
    d2 = float(((x[i] - x[j]) ** 2).sum())
    return d2 if kind == "squared_l2" else d2**0.5


def all_triplets(labels: list[int]) -> list[tuple[int, int, int]]:
    n = len(labels)
    return [(a, p, q) for a in range(n) for p in range(n) for q in range(n)
            if a != p and labels[a] == labels[p] and labels[q] != labels[a]]


def batch_hard(x: torch.Tensor, labels: list[int], kind: str) -> list[tuple[int, int, int]]:
    out = []
    n = len(labels)
    for a in range(n):
        pos = [p for p in range(n) if p != a and labels[p] == labels[a]]
        neg = [q for q in range(n) if labels[q] != labels[a]]
        if not pos or not neg:
            continue
        p = max(pos, key=lambda j: (brute_distance(x, a, j, kind), -j))
        q = min(neg, key=lambda j: (brute_distance(x, a, j, kind), j))
        out.append((a, p, q))
    return out


def triplet_loss(x: torch.Tensor, triplets: list[tuple[int, int, int]], margin: float, kind: str,
                 reduction: str, soft: bool = False) -> float:
    import math

    vals = []
    for a, p, q in triplets:
        v = brute_distance(x, a, p, kind) - brute_distance(x, a, q, kind) + margin
        vals.append(math.log1p(math.exp(v)) if soft else max(v, 0.0))
    if not vals:
        return 0.0
    if reduction == "sum":
        return sum(vals)
    if reduction == "mean_nonzero":
        nz = [v for v in vals if v > 1e-16]
        return sum(nz) / max(len(nz), 1)
    return sum(vals) / len(vals)
