"""CompreFace's similarity mapping and its fit, against hand values and scikit-learn's logistic regression."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.people import CASIA_WEBFACE, Similarity, fit_similarity


def test_the_published_mapping_by_hand() -> None:
    d = 0.9
    expected = (np.tanh((1.1362496 - d) * 5.803152427) + 1) / 2  # CompreFace's formula on the Euclidean distance
    assert CASIA_WEBFACE(d * d) == pytest.approx(expected)  # we pass squared distances
    assert CASIA_WEBFACE(1.1362496**2) == pytest.approx(0.5)
    assert Similarity(1.0, 2.0)(np.array([0.0, 4.0])).tolist() == pytest.approx([(np.tanh(2) + 1) / 2, (np.tanh(-2) + 1) / 2])


def test_the_fit_is_the_balanced_logistic_regression_of_scikit_learn() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    d = np.concatenate([rng.normal(0.8, 0.15, 300), rng.normal(1.35, 0.1, 3000)])
    y = np.concatenate([np.ones(300), np.zeros(3000)])
    sim = fit_similarity(d, y)
    ref = LogisticRegression(C=1e9, class_weight="balanced", tol=1e-12, max_iter=10_000).fit(d[:, None], y)
    a, b = float(ref.intercept_[0]), float(ref.coef_[0, 0])
    assert sim.c1 == pytest.approx(-b / 2, rel=1e-3)
    assert sim.c0 == pytest.approx(a / -b, rel=1e-3)
    assert 0.8 < sim.c0 < 1.35


def test_the_fit_needs_both_kinds_of_pairs() -> None:
    with pytest.raises(ValueError, match="same-person and different-person"):
        fit_similarity(np.array([0.5, 0.6]), np.array([1, 1]))
