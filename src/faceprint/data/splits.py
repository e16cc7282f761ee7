"""Seeded splits of a dataset by identity, so no person appears in two splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceprint.data.folder import DatasetError, IdentityFolder

__all__ = ["IdentitySplit", "split_by_identity"]


@dataclass(frozen=True)
class IdentitySplit:
    """Identity names per split."""

    train: list[str]
    val: list[str]
    test: list[str]


def split_by_identity(
    dataset: IdentityFolder,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    min_images: int = 1,
    max_images: int | None = None,
) -> IdentitySplit:
    """Shuffle the identities with ``seed`` and cut them into train/val/test.

    Identities with fewer than ``min_images`` or more than ``max_images`` images are left out first
    (e.g. 20–30 as the seed experiments did).
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    counts = {dataset.classes[y]: n for y, n in ((y, len(ix)) for y, ix in dataset.by_identity().items())}
    names = sorted(n for n, c in counts.items() if c >= min_images and (max_images is None or c <= max_images))
    if not names:
        raise DatasetError(f"no identity has between {min_images} and {max_images or 'any'} images")
    order = np.random.default_rng(seed).permutation(len(names))
    names = [names[i] for i in order]
    n_test = int(round(len(names) * test_fraction))
    n_val = int(round(len(names) * val_fraction))
    test, val, train = names[:n_test], names[n_test : n_test + n_val], names[n_test + n_val :]
    return IdentitySplit(sorted(train), sorted(val), sorted(test))
