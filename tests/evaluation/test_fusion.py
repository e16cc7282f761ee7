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
    """A and B agree on folds 1..9; only fold 0 tells them apart (A right, B wrong). Fold 0's training folds see a
    tie, so it keeps the first candidate (B alone) and fails; a choice that peeked at fold 0 would pick A."""
    n, folds = 200, 10
    same = np.tile([True, False], n // 2)
    good, bad = np.where(same, 0.5, 2.5), np.where(same, 2.5, 0.5)
    fold0 = np.arange(n) < n // folds
    d_a, d_b = good, np.where(fold0, bad, good)
    result = evaluate_fusion([d_a, d_b], same, n_folds=folds, grid=10)
    assert result.fold_weights[0] == [0.0, 1.0] and result.verification.fold_accuracy[0] == 0.0
    # the other folds train on fold 0 too, so they learn to weigh A
    assert all(w[0] > 0 for w in result.fold_weights[1:]) and result.verification.fold_accuracy[1:] == [1.0] * 9


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
    with pytest.raises(ValueError, match="both"):
        separation_auc(d, np.ones(60, bool))


def test_simplex_grid_covers_every_weight_vector_once() -> None:
    from itertools import product

    from faceprint.evaluation.fusion import simplex_grid

    grid = simplex_grid(3, 4)
    brute = {ws for ws in product(range(5), repeat=3) if sum(ws) == 4}  # the oracle: every integer split of 4
    assert len(grid) == len(brute) == 15
    assert {tuple(round(w * 4) for w in ws) for ws in grid} == brute
    assert all(abs(sum(ws) - 1) < 1e-12 for ws in grid)
    assert simplex_grid(2, 4) == [(0.0, 1.0), (0.25, 0.75), (0.5, 0.5), (0.75, 0.25), (1.0, 0.0)]


def test_three_model_fusion_weighs_the_informative_members_and_beats_each() -> None:
    """Two members carry independent signal, the third is noise: the folds give the noise member little weight and
    the fusion beats every member alone."""
    rng = np.random.default_rng(3)
    n = 2000
    same = rng.random(n) < 0.5
    base = np.where(same, 1.0, 1.6)
    d1, d2, noise = base + rng.normal(0, 0.35, n), base + rng.normal(0, 0.35, n), rng.uniform(0, 4, n)
    result = evaluate_fusion([d1, d2, noise], same, grid=10)
    assert all(len(w) == 3 and abs(sum(w) - 1) < 1e-9 for w in result.fold_weights)
    assert np.mean([w[2] for w in result.fold_weights]) < 0.15
    alone = [evaluate_fusion([d, d], same).verification.accuracy for d in (d1, d2, noise)]
    assert result.verification.accuracy > max(alone) + 0.02
