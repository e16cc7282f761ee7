"""How faces become people as photos arrive: the join rule, the founding rule and the neighbourhood they run on.

A new face *joins* the person whose nearest faces are closest on average (the mean of its ``linkage`` nearest
faces among the face's neighbours, an average-linkage distance measured locally), when that distance is below
the threshold, the user never rejected the face from that person and the person has no other face of the same
photo. Faces that join nobody wait; waiting faces are clustered by average linkage with photo cannot-links, and
a cluster of at least ``min_faces`` founds a new, unnamed person. Average linkage only merges groups with a pair
closer than the threshold, so clustering the connected components (pairs below the threshold) that hold new
faces gives the same clusters as clustering every waiting face, at the cost of the components alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faceprint.cluster.methods import agglomerative

__all__ = ["Join", "choose_joins", "components_with", "found_people"]


@dataclass(frozen=True)
class Join:
    """Face ``row`` (a position in the caller's arrays) joins ``person`` at average distance ``distance``."""

    row: int
    person: int
    distance: float


def choose_joins(dists: np.ndarray, people: np.ndarray, photos: Iterable[int], threshold: float,
                 rejected: set[tuple[int, int]] | None = None, face_ids: Iterable[int] | None = None,
                 present: dict[int, set[int]] | None = None, linkage: int = 3) -> list[Join]:
    """Joins for faces with neighbours ``dists`` (n, k) squared L2, nearest first, whose persons are ``people``
    (n, k) (−1: the neighbour has no person). ``photos``: each face's photo; ``present``: persons already in each
    photo (updated in place with the joins); ``rejected``: (face id, person) pairs the user refused.

    Greedy by distance over all faces: the closest (face, person) pair is taken first, so two faces of a photo
    competing for one person go to the closer one."""
    photos = list(photos)
    ids = list(face_ids) if face_ids is not None else list(range(len(photos)))
    rejected = rejected or set()
    present = present if present is not None else {}
    candidates: list[tuple[float, int, int]] = []
    for row in range(len(dists)):
        per: dict[int, list[float]] = {}
        for d, p in zip(dists[row], people[row]):
            if p >= 0 and np.isfinite(d):
                per.setdefault(int(p), []).append(float(d))
        for p, ds in per.items():
            score = float(np.mean(ds[:linkage]))  # neighbours come nearest first
            if score < threshold and (ids[row], p) not in rejected:
                candidates.append((score, row, p))
    joins, done = [], set()
    for score, row, p in sorted(candidates):
        if row in done or p in present.get(photos[row], set()):
            continue
        done.add(row)
        present.setdefault(photos[row], set()).add(p)
        joins.append(Join(row, p, score))
    return sorted(joins, key=lambda j: j.row)


def components_with(vectors: np.ndarray, seeds: Iterable[int], threshold: float, cap: int = 5000) -> np.ndarray:
    """Rows of ``vectors`` (unit, (n, D)) connected to a ``seeds`` row by a chain of pairs closer than ``threshold``
    (squared L2), found by range searches from the frontier; at most ``cap`` rows (the nearest-reached first)."""
    import faiss

    x = np.ascontiguousarray(vectors, np.float32)
    if not len(x):
        return np.zeros(0, np.int64)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    seen = set(int(s) for s in seeds)
    order, frontier = sorted(seen), sorted(seen)
    while frontier and len(order) < cap:
        lims, _, found = index.range_search(x[frontier], 1.0 - threshold / 2)  # inner product above 1 − T/2
        new = [int(j) for j in np.unique(found) if int(j) not in seen]
        new = new[: cap - len(order)]
        seen.update(new)
        order += new
        frontier = new
    return np.array(sorted(order), np.int64)


def found_people(vectors: np.ndarray, photos: np.ndarray, threshold: float, min_faces: int) -> np.ndarray:
    """Average-linkage clusters of waiting faces that never hold two faces of one photo; labels 0..C−1 for clusters
    of at least ``min_faces`` faces (new people), −1 for faces that keep waiting."""
    if not len(vectors):
        return np.zeros(0, np.int64)
    labels = agglomerative(vectors, threshold, groups=np.asarray(photos))
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes >= min_faces)
    remap = np.full(len(sizes), -1)
    remap[big] = np.arange(len(big))
    return remap[labels]
