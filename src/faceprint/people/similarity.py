"""A similarity in [0, 1] from a Euclidean distance: CompreFace's mapping (tanh((c0 − d)·c1) + 1) / 2.

It is a logistic curve in d (σ(2·c1·(c0 − d))), so fitting it to same / different pairs is a two-parameter
logistic regression, solved here by Newton's method. CompreFace publishes c0 = 1.1362496, c1 = 5.803152427
for the CASIA-WebFace FaceNet weights that ``casia-webface`` imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CASIA_PEOPLE_THRESHOLD", "PEOPLE_FAR", "CASIA_WEBFACE", "Similarity", "fit_similarity"]

# casia-webface's best join/found threshold on the people benchmark (LFW people with 4+ images, ORL, group photos;
# final F1 0.871 / 0.901 / 0.916 / 0.904 at 0.95 / 0.90 / 0.85 / 0.80): a false-accept rate of about 4e-4 there,
# stricter than search's verdict threshold (FAR 1e-3), since each new face is compared with every person
CASIA_PEOPLE_THRESHOLD = 0.85
PEOPLE_FAR = 4e-4


@dataclass(frozen=True)
class Similarity:
    """The mapping's coefficients and where they came from (``published``, ``fitted`` or ``default``)."""

    c0: float
    c1: float
    source: str = "published"

    def __call__(self, squared_distance: np.ndarray | float) -> np.ndarray | float:
        """Similarity of pairs at the given squared L2 distances (what the index stores)."""
        d = np.sqrt(np.maximum(np.asarray(squared_distance, np.float64), 0.0))
        s = (np.tanh((self.c0 - d) * self.c1) + 1) / 2
        return float(s) if np.ndim(s) == 0 else s

    def to_dict(self) -> dict[str, float | str]:
        return {"c0": self.c0, "c1": self.c1, "source": self.source}


CASIA_WEBFACE = Similarity(1.1362496, 5.803152427, "published")


def fit_similarity(distances: np.ndarray, same: np.ndarray, iterations: int = 50, ridge: float = 1e-6) -> Similarity:
    """Fit c0, c1 to pairs: ``distances`` Euclidean (not squared), ``same`` 1 for same-person pairs.

    Maximum likelihood of P(same | d) = σ(a + b·d) with a = 2·c1·c0, b = −2·c1; classes are weighted equally
    (a gallery has far more different-person pairs). Raises ValueError with fewer than one pair of each kind."""
    d = np.asarray(distances, np.float64).ravel()
    y = np.asarray(same, np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("fitting the similarity needs same-person and different-person pairs")
    w = np.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)
    x = np.stack([np.ones_like(d), d], 1)
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(x @ beta)))
        grad = x.T @ (w * (p - y))
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    a, b = beta
    if b >= 0:
        raise ValueError("the pairs do not get less similar with distance; cannot fit the similarity")
    c1 = -b / 2
    return Similarity(float(a / (2 * c1)), float(c1), "fitted")
