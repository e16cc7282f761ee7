"""The 10-fold protocol against hand-computed cases, scikit-learn and the shared dlib reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceprint.evaluation import evaluate_verification, read_lfw_pairs
from faceprint.evaluation.verification import _far_threshold, embedding_distance, kfold_indices


def _pairs_from_distances(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings e1 = 0, e2 = sqrt(d) along one axis, so squared L2 distance is exactly d."""
    e1 = np.zeros((len(d), 2))
    e2 = np.stack([np.sqrt(d), np.zeros(len(d))], axis=1)
    return e1, e2


def test_kfold_matches_sklearn() -> None:
    from sklearn.model_selection import KFold

    for n in (20, 23, 6000):
        ours = kfold_indices(n, 10)
        theirs = list(KFold(n_splits=10, shuffle=False).split(np.arange(n)))
        assert all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(ours, theirs))


def test_perfectly_separable_hand_case() -> None:
    # 10 folds of 2 pairs: same pairs at distance ~0.5, different pairs at ~1.5.
    d = np.tile([0.505, 1.505], 10)  # off the 0.01 grid, so float rounding cannot matter
    same = np.tile([True, False], 10)
    r = evaluate_verification(*_pairs_from_distances(d), same)
    assert r.accuracy == 1.0 and r.accuracy_std == 0.0
    # train-fold accuracy is 1 for every threshold in (0.505, 1.505]: the first max is 0.51
    assert r.best_thresholds == [pytest.approx(0.51)] * 10
    assert r.auc == pytest.approx(1.0) and r.eer == pytest.approx(0.0, abs=1e-9)


def test_hand_case_with_one_error_per_fold_pair() -> None:
    # Each block of 4 pairs: same at 0.205 and 1.005, different at 0.605 and 3.005.
    d = np.tile([0.205, 1.005, 0.605, 3.005], 10)
    same = np.tile([True, True, False, False], 10)
    r = evaluate_verification(*_pairs_from_distances(d), same)
    # Best train accuracy 3/4, first reached at t=0.21 (only 0.205 accepted). Test accuracy 3/4 too.
    assert r.accuracy == pytest.approx(0.75)
    assert r.best_thresholds[0] == pytest.approx(0.21)
    # ROC points: (0,0) → (0,.5) at t>0.2 → (.5,.5) at t>0.6 → (.5,1) at t>1.0 → (1,1) at t>3.0
    assert r.auc == pytest.approx(0.75)
    assert r.eer == pytest.approx(0.5)


def test_auc_agrees_with_sklearn_on_continuous_scores() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    n = 3000
    same = np.tile(np.r_[np.ones(150, bool), np.zeros(150, bool)], 10)
    d = np.where(same, rng.normal(1.0, 0.3, n), rng.normal(1.8, 0.35, n)).clip(0, 3.99)
    r = evaluate_verification(*_pairs_from_distances(d), same)
    assert r.auc == pytest.approx(roc_auc_score(same, -d), abs=2e-3)
    assert 0 < r.eer < 0.3


def test_far_threshold_interpolates_between_levels() -> None:
    thr = np.array([0.0, 0.1, 0.2, 0.3])
    far = np.array([0.0, 0.0, 0.002, 0.004])
    assert _far_threshold(far, thr, 0.001) == pytest.approx(0.15)
    assert _far_threshold(np.array([0.0, 0.0005, 0.0005, 0.0005]), thr, 0.001) == 0.0


def test_distance_metrics() -> None:
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert embedding_distance(a, b, "squared_l2")[0] == pytest.approx(2.0)
    assert embedding_distance(a, b, "cosine")[0] == pytest.approx(1.0)
    assert embedding_distance(a, b, "angular")[0] == pytest.approx(0.5)


def test_rejects_one_sided_pairs() -> None:
    with pytest.raises(ValueError, match="both same"):
        evaluate_verification(np.zeros((20, 2)), np.ones((20, 2)), np.ones(20, bool))


def test_reproduces_reference_metrics_on_lfw_dlib_embeddings(shared_data: Path) -> None:
    z = np.load(shared_data / "reference" / "lfw_dlib_embeddings.npz")
    row = {str(p): i for i, p in enumerate(z["paths"])}
    images = shared_data / "lfw" / "images"
    pairs = read_lfw_pairs(shared_data / "lfw" / "pairs.txt", images)
    assert len(pairs) == 6000 and pairs.missing == 0
    a = [row[str(p.relative_to(images))] for p in pairs.first]
    b = [row[str(p.relative_to(images))] for p in pairs.second]
    r = evaluate_verification(z["embeddings"][a], z["embeddings"][b], pairs.issame)
    ref = json.loads((shared_data / "reference" / "lfw_dlib_metrics.json").read_text())
    assert r.accuracy == pytest.approx(ref["acc_mean"], abs=1e-6)
    assert r.accuracy_std == pytest.approx(ref["acc_std"], abs=1e-6)
    assert r.val == pytest.approx(ref["val"], abs=1e-6)
    assert r.val_std == pytest.approx(ref["val_std"], abs=1e-6)
    assert r.far == pytest.approx(ref["far"], abs=1e-6)
    assert r.auc == pytest.approx(ref["auc"], abs=1e-6)
    assert r.eer == pytest.approx(ref["eer"], abs=1e-6)
    assert r.best_thresholds == pytest.approx(ref["best_thr"])
    assert r.fold_accuracy == pytest.approx(ref["fold_acc"])
