"""P×K batch sampling: P identities with K images each, a pure function of (seed, step).

Because batch ``t`` depends only on the seed and ``t``, resuming at step ``t`` reproduces the
uninterrupted sequence exactly; the sampler's whole state is the step counter.

Policy for small identities: identities with a single image are left out (they can never form a
positive pair); identities with 2..K-1 images contribute all their images plus random repeats
up to K, which the augmentation then makes differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from faceprint.data.folder import DatasetError

__all__ = ["PKSampler"]


class PKSampler:
    """Yield batches of ``(sample_index, augmentation_seed)`` pairs, P identities × K images."""

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0) -> None:
        if p < 2 or k < 2:
            raise ValueError(f"P×K sampling needs P >= 2 identities and K >= 2 images, got P={p}, K={k}")
        groups: dict[int, list[int]] = {}
        for i, y in enumerate(labels):
            groups.setdefault(int(y), []).append(i)
        self.groups = [np.array(ix) for _, ix in sorted(groups.items()) if len(ix) >= 2]
        self.excluded_singletons = sum(1 for ix in groups.values() if len(ix) < 2)
        if len(self.groups) < p:
            raise DatasetError(
                f"P={p} identities per batch but only {len(self.groups)} identities have 2 or more images"
            )
        self.p, self.k, self.seed = p, k, seed
        self.steps_per_epoch = len(self.groups) // p
        self._epoch_cache: tuple[int, np.ndarray] | None = None

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            order = np.random.default_rng([self.seed, epoch, 1]).permutation(len(self.groups))
            self._epoch_cache = (epoch, order)
        return self._epoch_cache[1]

    def _pick(self, members: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(members) >= self.k:
            return rng.choice(members, self.k, replace=False)
        extra = rng.choice(members, self.k - len(members), replace=True)
        return rng.permutation(np.concatenate([members, extra]))

    def batch(self, step: int) -> list[tuple[int, int]]:
        """The batch at global ``step``: P·K pairs (sample index, augmentation seed)."""
        epoch, slot = divmod(step, self.steps_per_epoch)
        ids = self._epoch_order(epoch)[slot * self.p : (slot + 1) * self.p]
        rng = np.random.default_rng([self.seed, step, 2])
        samples = np.concatenate([self._pick(self.groups[i], rng) for i in ids])
        aug = rng.integers(0, 2**31 - 1, size=len(samples))
        return [(int(s), int(a)) for s, a in zip(samples, aug)]

    def iterate(self, start: int, stop: int) -> Iterator[list[tuple[int, int]]]:
        """Batches for steps ``start`` .. ``stop - 1``."""
        for step in range(start, stop):
            yield self.batch(step)
