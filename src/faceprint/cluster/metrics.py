"""Clustering quality against true identities: pairwise precision / recall / F1 and NMI."""

from __future__ import annotations

import numpy as np

__all__ = ["cluster_metrics", "nmi", "pairwise_prf"]


def _contingency(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), np.int64)
    np.add.at(table, (t, p), 1)
    return table


def pairwise_prf(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Over all pairs of items: precision (same cluster → same identity), recall, F1."""
    table = _contingency(np.asarray(truth), np.asarray(pred))
    pairs = lambda v: (v * (v - 1) // 2).sum()  # noqa: E731
    tp, pred_pairs, true_pairs = pairs(table), pairs(table.sum(0)), pairs(table.sum(1))
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def nmi(truth: np.ndarray, pred: np.ndarray) -> float:
    """Normalized mutual information with the arithmetic-mean normalization (scikit-learn's default)."""
    table = _contingency(np.asarray(truth), np.asarray(pred)).astype(np.float64)
    n = table.sum()
    pt, pp = table.sum(1) / n, table.sum(0) / n
    nz = table > 0
    pij = table[nz] / n
    mi = float((pij * np.log(pij / np.outer(pt, pp)[nz])).sum())
    h = lambda p: float(-(p[p > 0] * np.log(p[p > 0])).sum())  # noqa: E731
    ht, hp = h(pt), h(pp)
    if ht == 0 and hp == 0:
        return 1.0
    return mi / ((ht + hp) / 2) if ht + hp else 0.0


def cluster_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1, NMI and the cluster counts."""
    p, r, f = pairwise_prf(truth, pred)
    return {"precision": p, "recall": r, "f1": f, "nmi": nmi(truth, pred),
            "clusters": int(len(np.unique(pred))), "identities": int(len(np.unique(truth)))}
