"""How faces become people as photos arrive: the join rule, the founding rule and the neighbourhood they run on.

A new face *joins* the person closest to it by average linkage (the mean squared distance to all the person's
faces, from the person's vector sum), among the people of its nearest faces, when that distance is below the
threshold, the user never rejected the face from that person and the person has no other face of the same
photo (a mean over only the person's nearest faces joined far more wrong faces on LFW: benchmarks/people.py).
Faces that join nobody wait; waiting faces are clustered by average linkage with photo cannot-links, and a
cluster of at least ``min_faces`` founds a new, unnamed person. Average linkage only merges groups with a pair
closer than the threshold, so clustering the connected components (pairs below the threshold) that hold new
faces gives the same clusters as clustering every waiting face, at the cost of the components alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faceprint.cluster.methods import agglomerative

__all__ = ["Join", "average_distances", "choose_joins", "components_with", "found_people"]


@dataclass(frozen=True)
class Join:
    """Face ``row`` (a position in the caller's arrays) joins ``person`` at average distance ``distance``."""

    row: int
    person: int
    distance: float


def choose_joins(candidates: list[dict[int, float]], photos: Iterable[int], threshold: float,
                 rejected: set[tuple[int, int]] | None = None, face_ids: Iterable[int] | None = None,
                 present: dict[int, set[int]] | None = None) -> list[Join]:
    """Joins for faces whose ``candidates`` are {person: average squared L2 distance to the person's faces}.
    ``photos``: each face's photo; ``present``: persons already in each photo (updated in place with the joins);
    ``rejected``: (face id, person) pairs the user refused.

    Greedy by distance over all faces: the closest (face, person) pair under the threshold is taken first, so two
    faces of a photo competing for one person go to the closer one and the other may take its next choice."""
    photos = list(photos)
    ids = list(face_ids) if face_ids is not None else list(range(len(photos)))
    rejected = rejected or set()
    present = present if present is not None else {}
    pairs = sorted((d, row, p) for row, cand in enumerate(candidates) for p, d in cand.items()
                   if d < threshold and (ids[row], p) not in rejected)
    joins, done = [], set()
    for d, row, p in pairs:
        if row in done or p in present.get(photos[row], set()):
            continue
        done.add(row)
        present.setdefault(photos[row], set()).add(p)
        joins.append(Join(row, p, float(d)))
    return sorted(joins, key=lambda j: j.row)


def average_distances(queries: np.ndarray, people: np.ndarray, sums: dict[int, tuple[np.ndarray, int]]) -> list[dict[int, float]]:
    """Average-linkage distance of each unit query to each person among its neighbours' ``people`` (n, k; −1 none):
    the mean squared L2 distance to all the person's unit faces, 2 − 2·q·(sum of faces)/count (``sums``)."""
    out = []
    for q, row in zip(queries, people):
        cand = {}
        for p in {int(p) for p in row if p >= 0}:
            if p not in sums:  # the person lost its faces since the neighbours were read
                continue
            total, count = sums[p]
            cand[p] = float(max(2.0 - 2.0 * float(q @ total) / count, 0.0))
        out.append(cand)
    return out


def components_with(vectors: np.ndarray, seeds: Iterable[int], threshold: float, cap: int = 5000) -> np.ndarray:
    """Rows of ``vectors`` (unit, (n, D)) connected to a ``seeds`` row by a chain of pairs closer than ``threshold``
    (squared L2), found by range searches from the frontier, breadth first; at most ``cap`` rows (within a round,
    the lowest rows first). Past the cap the clusters are those of the part found, no longer of the whole component."""
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
