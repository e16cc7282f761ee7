"""Verification pairs: LFW ``pairs.txt`` files and seeded pairs drawn from held-out identities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceprint.data.folder import DatasetError, IdentityFolder

__all__ = ["PairList", "generate_pairs", "read_lfw_pairs"]


@dataclass
class PairList:
    """Pairs of image paths with same/different flags; folds are contiguous blocks."""

    first: list[Path]
    second: list[Path]
    issame: np.ndarray
    n_folds: int = 10
    missing: int = 0

    def __len__(self) -> int:
        return len(self.first)

    def unique_paths(self) -> list[Path]:
        """Each image once, in first-seen order (embed these, then index the pairs)."""
        return list(dict.fromkeys([*self.first, *self.second]))


def _lfw_file(images: Path, name: str, number: str) -> Path | None:
    for ext in (".jpg", ".png"):
        p = images / name / f"{name}_{int(number):04d}{ext}"
        if p.exists():
            return p
    return None


def read_lfw_pairs(pairs_file: str | Path, images: str | Path) -> PairList:
    """Parse an LFW pairs file (header ``folds n``; ``name i j`` same, ``n1 i n2 j`` different).

    Pairs whose files are missing are skipped and counted in ``missing`` (as davidsandberg does).
    """
    pairs_file, images = Path(pairs_file), Path(images)
    if not pairs_file.is_file():
        raise DatasetError(f"pairs file {pairs_file} does not exist")
    lines = [ln.split() for ln in pairs_file.read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2:
        raise DatasetError(f"{pairs_file}: first line must be '<folds> <pairs per fold>'")
    n_folds = int(lines[0][0])
    first, second, same, missing = [], [], [], 0
    for k, f in enumerate(lines[1:], start=2):
        if len(f) == 3:
            a, b, s = _lfw_file(images, f[0], f[1]), _lfw_file(images, f[0], f[2]), True
        elif len(f) == 4:
            a, b, s = _lfw_file(images, f[0], f[1]), _lfw_file(images, f[2], f[3]), False
        else:
            raise DatasetError(f"{pairs_file}:{k}: expected 3 or 4 fields, got {len(f)}")
        if a is None or b is None:
            missing += 1
            continue
        first.append(a)
        second.append(b)
        same.append(s)
    if not first:
        raise DatasetError(f"none of the pairs in {pairs_file} has both images under {images}")
    return PairList(first, second, np.array(same), n_folds, missing)


def generate_pairs(folder: IdentityFolder, n_folds: int = 10, pairs_per_fold: int = 600, seed: int = 0) -> PairList:
    """Draw distinct same and different pairs, half and half per fold, from ``folder``'s identities.

    The count is capped by the same-identity pairs available (each fold gets at most 1/n_folds of them).
    """
    groups = [ix for ix in folder.by_identity().values()]
    multi = [g for g in groups if len(g) >= 2]
    if not multi or len(groups) < 2:
        raise DatasetError("pairs need at least one identity with 2 images and at least 2 identities")
    n_same_total = sum(len(g) * (len(g) - 1) // 2 for g in multi)
    half = min(pairs_per_fold // 2, n_same_total // n_folds)
    if half < 1:
        raise DatasetError(f"only {n_same_total} same-identity pairs: too few for {n_folds} folds")
    rng = np.random.default_rng([seed, 7])
    labels = np.asarray(folder.labels)
    seen: set[tuple[int, int]] = set()
    first, second, same = [], [], []

    def draw(is_same: bool) -> None:
        while True:
            if is_same:
                g = multi[rng.integers(len(multi))]
                i, j = rng.choice(g, 2, replace=False)
            else:
                i, j = rng.integers(len(labels), size=2)
                if labels[i] == labels[j]:
                    continue
            key = (min(i, j), max(i, j))
            if key not in seen:
                seen.add(key)
                first.append(folder.paths[int(i)])
                second.append(folder.paths[int(j)])
                same.append(is_same)
                return

    for _ in range(n_folds):
        for s in (True, False):
            for _ in range(half):
                draw(s)
    return PairList(first, second, np.array(same), n_folds)
