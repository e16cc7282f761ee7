"""Brute-force reference implementations with plain Python loops: the oracles the vectorized code must match."""

from __future__ import annotations

import torch


def labelled_unit_batch(seed: int, n: int = 64, classes: int = 8, dim: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch for the PML parity tests: unit-norm float32 embeddings and random labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1), labels


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


def margin_filtered(x: torch.Tensor, labels: list[int], margin: float, kind: str, type_of_triplets: str) -> list[tuple[int, int, int]]:
    out = []
    for a, p, q in all_triplets(labels):
        m = brute_distance(x, a, q, kind) - brute_distance(x, a, p, kind)
        ok = {"easy": m > margin, "all": m <= margin, "hard": m <= 0, "semihard": 0 < m <= margin}[type_of_triplets]
        if ok:
            out.append((a, p, q))
    return out


def semihard_candidates(x: torch.Tensor, labels: list[int], a: int, p: int, margin: float, kind: str, rule: str) -> list[int]:
    dap = brute_distance(x, a, p, kind)
    negs = [q for q in range(len(labels)) if labels[q] != labels[a]]
    if rule == "facenet":
        return [q for q in negs if dap < brute_distance(x, a, q, kind) < dap + margin]
    return [q for q in negs if brute_distance(x, a, q, kind) - dap < margin]


def semihard_hardest(x: torch.Tensor, labels: list[int], margin: float, kind: str, rule: str, fallback: str,
                     unique_pairs: bool = False) -> list[tuple[int, int, int]]:
    out = []
    n = len(labels)
    for a in range(n):
        for p in range(n):
            if p == a or labels[p] != labels[a] or (unique_pairs and p < a):
                continue
            cand = semihard_candidates(x, labels, a, p, margin, kind, rule)
            negs = [q for q in range(n) if labels[q] != labels[a]]
            if cand:
                out.append((a, p, min(cand, key=lambda q: (brute_distance(x, a, q, kind), q))))
            elif fallback == "hardest" and negs:
                out.append((a, p, min(negs, key=lambda q: (brute_distance(x, a, q, kind), q))))
            elif fallback == "largest" and negs:
                out.append((a, p, max(negs, key=lambda q: (brute_distance(x, a, q, kind), -q))))
    return out


def distance_weight(d: float, dim: int, cutoff: float = 0.5, nonzero_cutoff: float = 1.4) -> float:
    import math

    if d >= nonzero_cutoff:
        return 0.0
    d = max(d, cutoff)
    return math.exp((2.0 - dim) * math.log(d) - ((dim - 3) / 2.0) * math.log(max(1.0 - 0.25 * d * d, 1e-8)))


def class_mean_mismatch(x: torch.Tensor, labels: list[int], triplets: list[tuple[int, int, int]], norm: str, members: str) -> float:
    picked = [t[i] for t in triplets for i in ((1, 2) if members == "pn" else (0, 1, 2))]
    total = 0.0
    for c in sorted({labels[i] for i in picked}):
        sel = [x[i] for i in picked if labels[i] == c]
        bat = [x[i] for i in range(len(labels)) if labels[i] == c]
        diff = sum(bat) / len(bat) - sum(sel) / len(sel)
        d2 = float((diff**2).sum())
        total += d2**0.5 if norm == "l2" else d2
    return total
