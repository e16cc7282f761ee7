"""Offline random triplets (the seeds' baseline): triplets drawn in advance, one epoch at a time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceprint.data.folder import DatasetError

__all__ = ["OfflineTripletSampler"]


class OfflineTripletSampler:
    """Batches of ``n_triplets`` random (anchor, positive, negative) samples with no model in the loop.

    Each epoch pre-generates one triplet per image (as anchor), seeded by (seed, epoch); batch ``t``
    lists the anchors, then the positives, then the negatives, each as ``(index, augmentation seed)``,
    so the trainer can run three forward passes. Like the P×K sampler it is a pure function of the step.
    """

    def __init__(self, labels: Sequence[int], n_triplets: int, seed: int = 0) -> None:
        if n_triplets < 1:
            raise ValueError("offline training needs at least one triplet per batch")
        self.labels = np.asarray(labels)
        groups: dict[int, list[int]] = {}
        for i, y in enumerate(self.labels.tolist()):
            groups.setdefault(y, []).append(i)
        self.groups = {y: np.array(ix) for y, ix in groups.items()}
        self.anchors = np.array([i for i, y in enumerate(self.labels.tolist()) if len(groups[y]) >= 2])
        if len(self.groups) < 2 or len(self.anchors) == 0:
            raise DatasetError("offline triplets need 2 identities and at least one identity with 2 images")
        self.n, self.seed = n_triplets, seed
        self.steps_per_epoch = max(1, len(self.anchors) // n_triplets)
        self._cache: tuple[int, np.ndarray] | None = None

    def _epoch(self, epoch: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch, 3])
            a = rng.permutation(self.anchors)
            p = np.empty_like(a)
            n = np.empty_like(a)
            for k, i in enumerate(a):
                same = self.groups[int(self.labels[i])]
                p[k] = rng.choice(same[same != i])
                while True:
                    n[k] = rng.integers(len(self.labels))
                    if self.labels[n[k]] != self.labels[i]:
                        break
            self._cache = (epoch, np.stack([a, p, n], axis=1))
        return self._cache[1]

    def batch(self, step: int) -> list[tuple[int, int]]:
        """Anchors, then positives, then negatives of the batch at ``step``."""
        epoch, slot = divmod(step, self.steps_per_epoch)
        trip = self._epoch(epoch)[slot * self.n : (slot + 1) * self.n]
        aug = np.random.default_rng([self.seed, step, 4]).integers(0, 2**31 - 1, size=trip.size)
        order = trip.T.reshape(-1)
        return [(int(i), int(s)) for i, s in zip(order, aug)]

    def iterate(self, start: int, stop: int):  # type: ignore[no-untyped-def]
        """Batches for steps ``start`` .. ``stop - 1``."""
        for step in range(start, stop):
            yield self.batch(step)
