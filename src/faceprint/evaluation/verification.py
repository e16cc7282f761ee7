"""LFW-style verification: 10-fold accuracy, VAL@FAR, AUC and EER exactly as davidsandberg/facenet (SPEC §2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["Metric", "VerificationResult", "embedding_distance", "evaluate_distances", "evaluate_verification",
           "kfold_indices", "train_accuracy"]

Metric = Literal["squared_l2", "cosine", "angular"]


@dataclass
class VerificationResult:
    """Fold-averaged verification figures and the ROC curve they come from."""

    accuracy: float
    accuracy_std: float
    val: float
    val_std: float
    far: float
    auc: float
    eer: float
    fold_accuracy: list[float] = field(default_factory=list)
    best_thresholds: list[float] = field(default_factory=list)
    fpr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tpr: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def summary(self) -> dict[str, float]:
        """The scalar figures, JSON-ready."""
        keys = ("accuracy", "accuracy_std", "val", "val_std", "far", "auc", "eer")
        return {k: float(getattr(self, k)) for k in keys}


def embedding_distance(e1: np.ndarray, e2: np.ndarray, metric: Metric = "squared_l2") -> np.ndarray:
    """Row-wise distance: squared L2 (metric 0), 1 − cosine, or arccos(cos)/π (metric 1)."""
    if metric == "squared_l2":
        return np.sum(np.square(e1 - e2), axis=1)
    cos = np.sum(e1 * e2, axis=1) / (np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1) + 1e-12)
    if metric == "cosine":
        return 1.0 - cos
    if metric == "angular":
        return np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi
    raise ValueError(f"unknown metric {metric!r}; choose squared_l2, cosine or angular")


def kfold_indices(n: int, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous folds as sklearn's ``KFold(n_splits, shuffle=False)``: (train, test) index pairs."""
    if n < n_folds:
        raise ValueError(f"{n} pairs cannot be split into {n_folds} folds")
    tests = np.array_split(np.arange(n), n_folds)
    return [(np.setdiff1d(np.arange(n), t), t) for t in tests]


def _rates(thresholds: np.ndarray, dist: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TPR, FPR and accuracy for every threshold (predict same if dist < t)."""
    pred = dist[None, :] < thresholds[:, None]
    tp = (pred & same).sum(1)
    fp = (pred & ~same).sum(1)
    tn = (~pred & ~same).sum(1)
    fn = (~pred & same).sum(1)
    tpr = np.where(tp + fn == 0, 0.0, tp / np.maximum(tp + fn, 1))
    fpr = np.where(fp + tn == 0, 0.0, fp / np.maximum(fp + tn, 1))
    return tpr, fpr, (tp + tn) / dist.size


def _far_threshold(far_train: np.ndarray, thresholds: np.ndarray, target: float) -> float:
    """Threshold reaching ``target`` FAR, linearly interpolated between the bracketing FAR levels.

    scipy's ``interp1d(kind='slinear')`` (davidsandberg) rejects the repeated FAR values of a real
    curve, so we interpolate between the last threshold at the highest FAR <= target and the first
    threshold at the next FAR level (SPEC §2.4).
    """
    if far_train.max() < target:
        return 0.0
    below = far_train <= target
    lo_level = far_train[below].max()
    lo = np.nonzero(far_train == lo_level)[0][-1]
    if lo_level == target or lo + 1 >= len(thresholds):
        return float(thresholds[lo])
    hi = lo + 1
    return float(thresholds[lo] + (target - far_train[lo]) * (thresholds[hi] - thresholds[lo]) / (far_train[hi] - far_train[lo]))


def _eer(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Root x of 1 − x − TPR(x) on [0, 1] (TPR linearly interpolated in FPR), by bisection."""
    order = np.argsort(fpr, kind="stable")
    xs, ys = fpr[order], tpr[order]
    f = lambda x: 1.0 - x - np.interp(x, xs, ys)  # noqa: E731 - decreasing in x
    lo, hi = 0.0, 1.0
    if f(lo) <= 0:
        return 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def evaluate_verification(
    emb1: np.ndarray, emb2: np.ndarray, issame: np.ndarray, metric: Metric = "squared_l2",
    n_folds: int = 10, far_target: float = 1e-3, subtract_mean: bool = False,
) -> VerificationResult:
    """Run the 10-fold protocol on paired embeddings ``emb1[i]`` vs ``emb2[i]``.

    Accuracy uses thresholds 0:4:0.01 chosen on the other folds; VAL@FAR uses 0:4:0.001.
    """
    emb1, emb2 = np.asarray(emb1, np.float64), np.asarray(emb2, np.float64)
    same = np.asarray(issame, bool)
    if emb1.shape != emb2.shape or emb1.ndim != 2 or len(same) != len(emb1):
        raise ValueError(f"need two (N, D) embedding arrays and N labels, got {emb1.shape}, {emb2.shape}, {same.shape}")
    dist = embedding_distance(emb1, emb2, metric)

    def fold_distance(train: np.ndarray) -> np.ndarray:
        if not subtract_mean:
            return dist
        mean = np.mean(np.concatenate([emb1[train], emb2[train]]), axis=0)
        return embedding_distance(emb1 - mean, emb2 - mean, metric)

    return evaluate_distances(fold_distance, same, n_folds, far_target)


def train_accuracy(dist: np.ndarray, same: np.ndarray) -> float:
    """The best accuracy over the protocol's thresholds 0:4:0.01 (what a fold's threshold is chosen by)."""
    return float(_rates(np.arange(0, 4, 0.01), dist, same)[2].max())


def evaluate_distances(fold_distance: Callable[[np.ndarray], np.ndarray], issame: np.ndarray, n_folds: int = 10,
                       far_target: float = 1e-3) -> VerificationResult:
    """The protocol on pair distances (0..4 scale); ``fold_distance(train indices)`` may use the training folds
    (mean subtraction, a fusion weight) to give every pair's distance for that fold."""
    same = np.asarray(issame, bool)
    if not same.any() or same.all():
        raise ValueError("verification needs both same-identity and different-identity pairs")
    roc_t, val_t = np.arange(0, 4, 0.01), np.arange(0, 4, 0.001)
    tprs, fprs, accs, best, vals, fars = [], [], [], [], [], []
    for train, test in kfold_indices(len(same), n_folds):
        dist = fold_distance(train)
        _, _, acc_train = _rates(roc_t, dist[train], same[train])
        k = int(np.argmax(acc_train))
        tpr, fpr, acc_test = _rates(roc_t, dist[test], same[test])
        tprs.append(tpr)
        fprs.append(fpr)
        accs.append(acc_test[k])
        best.append(float(roc_t[k]))
        _, far_train, _ = _rates(val_t, dist[train], same[train])
        thr = np.array([_far_threshold(far_train, val_t, far_target)])
        val, far, _ = _rates(thr, dist[test], same[test])
        vals.append(val[0])
        fars.append(far[0])
    tpr_m, fpr_m = np.mean(tprs, 0), np.mean(fprs, 0)
    order = np.argsort(fpr_m, kind="stable")
    auc = float(np.trapezoid(tpr_m[order], fpr_m[order]))
    return VerificationResult(
        accuracy=float(np.mean(accs)), accuracy_std=float(np.std(accs)), val=float(np.mean(vals)),
        val_std=float(np.std(vals)), far=float(np.mean(fars)), auc=auc, eer=_eer(fpr_m, tpr_m),
        fold_accuracy=[float(a) for a in accs], best_thresholds=best, fpr=fpr_m, tpr=tpr_m,
    )
