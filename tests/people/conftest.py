"""Libraries of synthetic face vectors (people as noisy unit centres) over the tiny model's store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.people import Detected, Library, open_library
from tests.search.conftest import live_server, tiny_weights  # noqa: F401 - fixtures and helpers shared with the index tests


class Photos:
    """Photos of given people: each face is its person's centre plus small noise (same person d² ≈ 0.1, others ≈ 2)."""

    def __init__(self, people: int = 6, dim: int = 16, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        c = self.rng.normal(size=(people, dim))
        self.centres = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.count = 0

    def vector(self, who: int) -> np.ndarray:
        v = self.centres[who] + 0.05 * self.rng.normal(size=self.centres.shape[1])
        return (v / np.linalg.norm(v)).astype(np.float32)

    def __call__(self, *who: int) -> Detected:
        self.count += 1
        vecs = np.stack([self.vector(w) for w in who]) if who else np.zeros((0, self.centres.shape[1]), np.float32)
        return Detected(f"hash-{self.count}", f"/photos/{self.count}.jpg", 100, 64, 64, None, vecs,
                        [[10.0 * k, 0, 10.0 * k + 8, 8] for k in range(len(who))], [None] * len(who))


@pytest.fixture()
def library(tmp_path: Path, tiny_weights: str) -> Library:  # noqa: F811
    lib = open_library(tmp_path / "lib", {"weights": tiny_weights}, detect=False)
    yield lib
    lib.close()


@pytest.fixture()
def photos() -> Photos:
    return Photos()
