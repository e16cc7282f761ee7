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


class PatternNet:
    """Builds an embedder whose vector is an image's 4×4 colour pattern (centred, unit length): photos of one
    "person" (one random pattern plus pixel noise) are near each other and far from the others', through the
    library's real decode → crop → embed path."""

    @staticmethod
    def embedder():  # type: ignore[no-untyped-def]
        import torch
        import torch.nn.functional as F

        from faceprint.models import Embedder

        class Net(torch.nn.Module):
            embedding_dim = 48

            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("tag", torch.ones(1))  # something for the model fingerprint

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                p = F.adaptive_avg_pool2d(x, 4).flatten(1)
                return F.normalize(p - p.mean(1, keepdim=True), dim=1)

        return Embedder(Net(), 32, "pattern", "torch")

    @staticmethod
    def patterns(people: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.integers(30, 226, (people, 4, 4, 3)).astype(np.uint8)

    @staticmethod
    def image(pattern: np.ndarray, rng: np.random.Generator, size: int = 64):  # type: ignore[no-untyped-def]
        from PIL import Image

        big = np.kron(pattern, np.ones((size // 4, size // 4, 1), np.uint8)).astype(np.int16)
        return Image.fromarray(np.clip(big + rng.integers(-8, 9, big.shape), 0, 255).astype(np.uint8))
