"""Miners against brute-force enumeration, a hand-made case and pytorch-metric-learning."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from faceprint.miners import AllTripletsMiner, BatchHardMiner, create_miner
from tests.miners import oracles

LAYOUTS = {
    "pk": [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],
    "singletons": [0, 0, 1, 2, 2, 3, 4, 4, 4, 5],
    "one_class": [7] * 6,
    "all_distinct": list(range(8)),
    "unsorted": [3, 1, 3, 0, 1, 0, 3, 2, 2, 1],
}


def _as_set(t: tuple[torch.Tensor, ...]) -> list[tuple[int, int, int]]:
    return sorted(zip(*(x.tolist() for x in t)))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["squared_l2", "l2", "cosine"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_hard_matches_brute_force(layout: str, kind: str, dtype: torch.dtype) -> None:
    labels = LAYOUTS[layout]
    for seed in range(3):
        x = torch.randn(len(labels), 5, generator=torch.Generator().manual_seed(seed), dtype=dtype)
        got = _as_set(BatchHardMiner(kind)(x, torch.tensor(labels)))  # type: ignore[arg-type]
        assert got == sorted(oracles.batch_hard(x, labels, kind))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_all_triplets_matches_enumeration(layout: str) -> None:
    labels = LAYOUTS[layout]
    x = torch.randn(len(labels), 4)
    assert _as_set(AllTripletsMiner()(x, torch.tensor(labels))) == sorted(oracles.all_triplets(labels))


def test_hand_made_4x4_case() -> None:
    # Points on a line: 0 and 1 are identity A, 2 and 3 identity B.
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    labels = torch.tensor([0, 0, 1, 1])
    a, p, n = BatchHardMiner("l2")(x, labels)
    # anchor 0: only positive 1, nearest negative 2 (d=3); anchor 1: pos 0, neg 2 (d=2);
    # anchor 2: pos 3, nearest negative 1 (d=2); anchor 3: pos 2, nearest negative 1 (d=6).
    assert a.tolist() == [0, 1, 2, 3]
    assert p.tolist() == [1, 0, 3, 2]
    assert n.tolist() == [2, 2, 1, 1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=2, max_size=14), st.integers(0, 10_000))
def test_triplet_properties(labels: list[int], seed: int) -> None:
    x = torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(seed))
    y = torch.tensor(labels)
    for miner in (BatchHardMiner(), AllTripletsMiner()):
        a, p, n = miner(x, y)
        assert (y[a] == y[p]).all() and (y[a] != y[n]).all()
        assert (a != p).all() and (a != n).all() and (p != n).all()
        trip = _as_set((a, p, n))
        assert len(trip) == len(set(trip))
        assert a.device == x.device and a.dtype == torch.long


def test_rejects_bad_shapes_and_names() -> None:
    with pytest.raises(ValueError, match="labels must be"):
        BatchHardMiner()(torch.randn(4, 3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="unknown miner"):
        create_miner("hardest")


def test_batch_hard_same_triplets_as_pytorch_metric_learning() -> None:
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    from pytorch_metric_learning.distances import LpDistance

    for seed in range(5):
        x, labels = oracles.labelled_unit_batch(seed)
        theirs = pml_miners.BatchHardMiner(distance=LpDistance(normalize_embeddings=False))(x, labels)
        assert _as_set(BatchHardMiner("l2")(x, labels)) == _as_set(theirs)
