"""Identification on held-out identities: rank-1 accuracy and MAP@R, each image a probe against the rest."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faceprint.distances import pairwise_distance

__all__ = ["IdentificationResult", "evaluate_identification"]


@dataclass(frozen=True)
class IdentificationResult:
    """Leave-one-out retrieval figures over probes that have at least one same-identity image."""

    rank1: float
    map_at_r: float
    n_probes: int


def evaluate_identification(embeddings: torch.Tensor, labels: torch.Tensor, chunk: int = 1024) -> IdentificationResult:
    """Each image queries all others (its gallery). MAP@R as Musgrave et al. 2020 (R = same-label count)."""
    emb = torch.as_tensor(embeddings, dtype=torch.float32)
    labels = torch.as_tensor(labels)
    n = emb.shape[0]
    counts = (labels[:, None] == labels[None, :]).sum(1) - 1
    max_r = int(counts.max()) if n else 0
    if max_r < 1:
        raise ValueError("identification needs at least one identity with two or more images")
    hits1, maps = [], []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        d = pairwise_distance(emb[rows], emb, "squared_l2")
        d[torch.arange(len(rows)), rows] = float("inf")
        nn = d.topk(max_r, dim=1, largest=False).indices
        rel = (labels[nn] == labels[rows][:, None]).float()
        r = counts[rows]
        ks = torch.arange(1, max_r + 1, dtype=torch.float32)
        within = ks[None, :] <= r[:, None]
        prec = rel.cumsum(1) / ks
        ap = (prec * rel * within).sum(1) / r.clamp_min(1)
        valid = r > 0
        hits1.append(rel[valid, 0])
        maps.append(ap[valid])
    h, m = torch.cat(hits1), torch.cat(maps)
    return IdentificationResult(rank1=float(h.mean()), map_at_r=float(m.mean()), n_probes=int(h.numel()))
