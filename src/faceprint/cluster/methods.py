"""Clustering face embeddings by a distance threshold: average-linkage agglomerative, DBSCAN, Chinese whispers.

All take (N, D) L2-normalized embeddings and a squared-L2 threshold (the verification threshold of the
model is a natural choice) and return integer labels 0..C−1 (noise points get their own cluster).
"""

from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "agglomerative", "chinese_whispers", "cluster", "dbscan", "squared_distances"]


def squared_distances(x: np.ndarray) -> np.ndarray:
    """Pairwise squared L2 distances (float64, clipped at 0)."""
    x = np.asarray(x, np.float64)
    sq = (x * x).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..C−1 by first appearance."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv]


def agglomerative(x: np.ndarray, threshold: float, groups: np.ndarray | None = None) -> np.ndarray:
    """Average linkage: merge the closest clusters while their mean pairwise distance is below ``threshold``.

    Lance–Williams updates with a cached nearest neighbour per row: O(N²) memory, about O(N²) time.
    ``groups``: cannot-link groups (e.g. the photo of each face; −1 for none): two items of one group never share
    a cluster. Their distance starts infinite, and the size-weighted average keeps any cluster holding one of
    them infinitely far from any cluster holding the other.
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, int)
    d = squared_distances(x)
    if groups is not None:
        g = np.asarray(groups)
        d[(g[:, None] == g[None, :]) & (g[:, None] >= 0)] = np.inf
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    alive = np.ones(n, bool)
    labels = np.arange(n)
    nn = d.argmin(1)
    nn_d = d[np.arange(n), nn]
    while True:
        cand = np.where(alive, nn_d, np.inf)
        i = int(cand.argmin())
        if not np.isfinite(cand[i]) or cand[i] >= threshold:
            break
        j = int(nn[i])
        merged = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        merged[[i, j]] = np.inf
        merged[~alive] = np.inf
        d[i], d[:, i] = merged, merged
        d[j], d[:, j] = np.inf, np.inf
        alive[j], size[i] = False, size[i] + size[j]
        labels[labels == j] = i
        nn_d[j] = np.inf
        stale = alive & ((nn == i) | (nn == j))
        stale[i] = True
        for r in np.flatnonzero(stale):
            nn[r] = int(d[r].argmin())
            nn_d[r] = d[r, nn[r]]
        better = alive & (merged < nn_d)
        nn[better], nn_d[better] = i, merged[better]
    return _relabel(labels)


def dbscan(x: np.ndarray, threshold: float, min_samples: int = 2) -> np.ndarray:
    """DBSCAN with ``eps`` = ``threshold`` (squared L2); noise points become singleton clusters."""
    n = len(x)
    neighbours = squared_distances(x) < threshold  # includes the point itself
    core = neighbours.sum(1) >= min_samples
    labels = np.full(n, -1)
    current = 0
    for p in range(n):
        if labels[p] != -1 or not core[p]:
            continue
        labels[p] = current
        stack = [p]
        while stack:
            q = stack.pop()
            if not core[q]:
                continue
            for r in np.flatnonzero(neighbours[q] & (labels == -1)):
                labels[r] = current
                stack.append(int(r))
        current += 1
    noise = labels == -1
    labels[noise] = current + np.arange(noise.sum())
    return _relabel(labels)


def chinese_whispers(x: np.ndarray, threshold: float, iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Chinese whispers (Biemann 2006) on the graph of pairs closer than ``threshold``, edge weight 1 − d/threshold."""
    n = len(x)
    d = squared_distances(x)
    w = np.where(d < threshold, 1.0 - d / threshold, 0.0)
    np.fill_diagonal(w, 0.0)
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        changed = 0
        for p in rng.permutation(n):
            nbrs = np.flatnonzero(w[p])
            if len(nbrs) == 0:
                continue
            votes: dict[int, float] = {}
            for q in nbrs:
                votes[int(labels[q])] = votes.get(int(labels[q]), 0.0) + float(w[p, q])
            best = max(votes, key=lambda k: (votes[k], -k))
            if best != labels[p]:
                labels[p], changed = best, changed + 1
        if not changed:
            break
    return _relabel(labels)


METHODS = {"agglomerative": agglomerative, "dbscan": dbscan, "chinese_whispers": chinese_whispers}


def cluster(x: np.ndarray, threshold: float, method: str = "agglomerative") -> np.ndarray:
    """Cluster with a method by name."""
    if method not in METHODS:
        raise ValueError(f"unknown clustering method {method!r}; choose from {', '.join(METHODS)}")
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be a positive squared distance, got {threshold}")
    return METHODS[method](np.asarray(x), threshold)
