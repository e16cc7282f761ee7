"""Score fusion: the fused distance is the concatenation's distance, and each fold's weight ignores its test fold."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.evaluation import evaluate_verification
from faceprint.evaluation.fusion import evaluate_fusion, fuse
from faceprint.evaluation.verification import embedding_distance


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_fused_distance_is_the_weighted_concatenations_distance() -> None:
    rng = np.random.default_rng(0)
    a1, b1, a2, b2 = _unit(rng, 50, 8), _unit(rng, 50, 8), _unit(rng, 50, 4), _unit(rng, 50, 4)
    w = 0.3
    cat_a = np.hstack([np.sqrt(w) * a1, np.sqrt(1 - w) * a2])
    cat_b = np.hstack([np.sqrt(w) * b1, np.sqrt(1 - w) * b2])
    got = fuse([embedding_distance(a1, b1), embedding_distance(a2, b2)], [w, 1 - w])
    np.testing.assert_allclose(got, embedding_distance(cat_a, cat_b), atol=1e-12)
    assert np.allclose(np.linalg.norm(cat_a, axis=1), 1)


def test_each_fold_chooses_its_weight_on_the_training_folds_only() -> None:
    """Model A separates pairs everywhere but in fold 0; model B only in fold 0. Fold 0's weight must still be A's."""
    n, folds = 200, 10
    same = np.tile([True, False], n // 2)
    good = np.where(same, 0.5, 2.5)
    bad = np.where(same, 2.5, 0.5)  # inverted: a model that is wrong
    fold0 = np.arange(n) < n // folds
    d_a = np.where(fold0, bad, good)
    d_b = np.where(fold0, good, bad)
    result = evaluate_fusion([d_a, d_b], same, n_folds=folds, grid=10)
    # fold 0 is tested with a weight chosen on folds 1..9, where A works: A outweighs B, and fold 0 fails,
    # which it would not if its own pairs (where only B works) had informed the choice
    assert result.fold_weights[0][0] > 0.5 and result.verification.fold_accuracy[0] == 0.0
    assert all(w[0] > 0.5 for w in result.fold_weights) and result.verification.fold_accuracy[1:] == [1.0] * 9


def test_fusion_of_two_noisy_views_beats_either_alone() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    same = rng.random(n) < 0.5
    base = np.where(same, 1.0, 1.6)
    d1, d2 = base + rng.normal(0, 0.35, n), base + rng.normal(0, 0.35, n)  # independent errors
    fused = evaluate_fusion([d1, d2], same).verification.accuracy
    alone = [evaluate_fusion([d, d], same).verification.accuracy for d in (d1, d2)]
    assert fused > max(alone) + 0.02
    ones = np.ones((n, 1))
    assert evaluate_verification(ones, ones * 0.9, same).accuracy <= 0.6  # sanity: no signal, no accuracy


def test_separation_auc_matches_the_pair_count() -> None:
    rng = np.random.default_rng(2)
    d = np.round(rng.random(60), 1)  # with ties
    same = rng.random(60) < 0.4
    pos, neg = d[same], d[~same]
    brute = np.mean([(n > p) + 0.5 * (n == p) for p in pos for n in neg])
    from faceprint.evaluation.fusion import separation_auc

    assert separation_auc(d, same) == pytest.approx(brute, abs=1e-12)
