"""The assignment rules against brute-force oracles and hand-made cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceprint.cluster.methods import agglomerative, squared_distances
from faceprint.people.assign import average_distances, choose_joins, components_with, found_people


def unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def naive_constrained_average_linkage(x: np.ndarray, threshold: float, groups: np.ndarray) -> list[frozenset[int]]:
    """O(n³) oracle: merge the pair of clusters with the smallest mean pairwise distance while it is below the
    threshold, never merging clusters that hold two items of one group."""
    d = squared_distances(x)
    clusters = [frozenset([i]) for i in range(len(x))]
    while True:
        best = None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            ga = {groups[i] for i in clusters[a] if groups[i] >= 0}
            gb = {groups[i] for i in clusters[b] if groups[i] >= 0}
            if ga & gb:
                continue
            mean = np.mean([d[i, j] for i in clusters[a] for j in clusters[b]])
            if mean < threshold and (best is None or mean < best[0]):
                best = (mean, a, b)
        if best is None:
            return clusters
        _, a, b = best
        merged = clusters[a] | clusters[b]
        clusters = [c for k, c in enumerate(clusters) if k not in (a, b)] + [merged]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 14), st.floats(0.5, 2.0))
def test_constrained_average_linkage_equals_the_brute_force_oracle(seed: int, n: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    x = unit(rng, n, 4)
    groups = rng.integers(-1, 3, n)
    labels = agglomerative(x, threshold, groups=groups)
    got = {frozenset(np.flatnonzero(labels == k).tolist()) for k in np.unique(labels)}
    assert got == set(naive_constrained_average_linkage(x, threshold, groups))
    for k in np.unique(labels):  # never two items of one group in a cluster
        g = groups[labels == k]
        g = g[g >= 0]
        assert len(g) == len(set(g.tolist()))


def test_no_groups_is_plain_average_linkage() -> None:
    x = unit(np.random.default_rng(1), 30)
    assert (agglomerative(x, 1.2) == agglomerative(x, 1.2, groups=np.full(30, -1))).all()


def test_two_faces_of_one_photo_are_never_clustered_together_even_when_identical() -> None:
    x = np.array([[1, 0], [1, 0], [1, 0]], np.float32)
    labels = agglomerative(x, 1.0, groups=np.array([7, 7, -1]))
    assert labels[0] != labels[1] and len(set(labels.tolist())) == 2


def test_components_equal_the_connected_components_of_the_threshold_graph() -> None:
    rng = np.random.default_rng(2)
    x = unit(rng, 80, 3)
    t = 0.3
    adj = squared_distances(x) < t
    for seed in range(0, 80, 9):
        reach, stack = {seed}, [seed]
        while stack:  # breadth-first search over the brute-force adjacency
            for j in np.flatnonzero(adj[stack.pop()]):
                if int(j) not in reach:
                    reach.add(int(j))
                    stack.append(int(j))
        assert components_with(x, [seed], t).tolist() == sorted(reach)
    assert len(components_with(x, [0], 4.1, cap=10)) == 10  # every pair is connected; the cap holds


def test_average_linkage_clusters_of_components_equal_those_of_all_items() -> None:
    """What justifies clustering only the components around new faces: the clusters are the same."""
    rng = np.random.default_rng(3)
    centres = unit(rng, 6, 16)
    x = np.repeat(centres, 5, axis=0) + 0.15 * rng.normal(size=(30, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    groups = rng.integers(-1, 10, 30)
    full = agglomerative(x, 0.9, groups=groups)
    rows = components_with(x, [0], 0.9)
    part = agglomerative(x[rows], 0.9, groups=groups[rows])
    whole = {frozenset(rows[part == k].tolist()) for k in np.unique(part)}
    assert whole == {frozenset(np.flatnonzero(full == full[r]).tolist()) for r in rows}


def test_found_people_keeps_small_clusters_waiting() -> None:
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]], np.float32)
    labels = found_people(x, np.arange(5), 0.5, min_faces=3)
    assert labels.tolist() == [0, 0, 0, -1, -1]


def test_average_distance_is_the_mean_over_all_the_persons_faces() -> None:
    rng = np.random.default_rng(4)
    faces = unit(rng, 7)
    q = unit(rng, 1)[0]
    sums = {3: (faces.astype(np.float64).sum(0), 7)}
    got = average_distances(q[None], np.array([[3, -1]]), sums)[0][3]
    assert got == pytest.approx(float(((faces - q) ** 2).sum(1).mean()), abs=1e-5)


def test_joins_respect_threshold_rejections_and_photos() -> None:
    cands = [{1: 0.2, 2: 0.5}, {1: 0.1}, {2: 0.9}, {1: 0.3, 2: 0.4}]
    photos = [10, 10, 11, 12]
    joins = choose_joins(cands, photos, 0.8, rejected={(103, 1)}, face_ids=[100, 101, 102, 103])
    got = {j.row: j.person for j in joins}
    # face 101 is closer to person 1 than face 100 of the same photo: 100 takes its next choice, person 2;
    # face 102 is too far from anyone; face 103 was rejected from 1 and goes to 2
    assert got == {0: 2, 1: 1, 3: 2}


def test_joins_never_give_a_person_already_in_the_photo() -> None:
    joins = choose_joins([{5: 0.1}], [3], 1.0, present={3: {5}})
    assert joins == []
