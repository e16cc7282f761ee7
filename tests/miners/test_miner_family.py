"""Semi-hard, margin-filtered, random and distance-weighted miners against brute force and PML."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import faceprint.miners.base as miner_base
from faceprint.miners import (
    DistanceWeightedMiner, RandomTripletMiner, SemiHardMiner, TripletMarginMiner, create_miner, list_miners,
)
from faceprint.miners.distance_weighted import distance_weights
from tests.miners import oracles
from tests.miners.test_miners import LAYOUTS, _as_set


@pytest.fixture(params=[None, 7], ids=["one_block", "tiny_blocks"])
def block_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test with the default block size and with blocks of a few pairs (forces many blocks)."""
    if request.param:
        monkeypatch.setattr(miner_base, "MAX_BLOCK_ELEMENTS", request.param)


def _x(n: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=dtype), dim=1)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["squared_l2", "l2", "cosine"])
@pytest.mark.parametrize("type_of_triplets", ["all", "hard", "semihard", "easy"])
@pytest.mark.parametrize("margin", [0.05, 0.2, 1.0])
def test_triplet_margin_miner_matches_brute_force(block_size: None, layout: str, kind: str, type_of_triplets: str, margin: float) -> None:
    labels = LAYOUTS[layout]
    x = _x(len(labels), 0)
    got = TripletMarginMiner(margin, type_of_triplets, kind)(x, torch.tensor(labels))  # type: ignore[arg-type]
    want = oracles.margin_filtered(x, labels, margin, kind, type_of_triplets)
    assert list(zip(*(t.tolist() for t in got))) == want  # same set, same lexicographic order


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("rule", ["facenet", "vgg"])
@pytest.mark.parametrize("fallback", ["drop", "hardest", "largest"])
@pytest.mark.parametrize("margin", [0.1, 0.5])
@pytest.mark.parametrize("unique_pairs", [False, True])
def test_semihard_hardest_pick_matches_brute_force(block_size: None, layout: str, rule: str, fallback: str, margin: float, unique_pairs: bool) -> None:
    labels = LAYOUTS[layout]
    for seed in range(2):
        x = _x(len(labels), seed)
        miner = SemiHardMiner(margin, rule, "hardest", fallback, unique_pairs)  # type: ignore[arg-type]
        got = _as_set(miner(x, torch.tensor(labels)))
        assert got == sorted(oracles.semihard_hardest(x, labels, margin, "squared_l2", rule, fallback, unique_pairs))


@pytest.mark.parametrize("rule", ["facenet", "vgg"])
def test_semihard_random_pick_is_a_candidate_and_covers_them(rule: str) -> None:
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 3]
    x = _x(len(labels), 3)
    miner = SemiHardMiner(1.0, rule, "random", "drop")  # type: ignore[arg-type]
    seen: dict[tuple[int, int], set[int]] = {}
    for s in range(60):
        a, p, n = miner(x, torch.tensor(labels), torch.Generator().manual_seed(s))
        for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
            cand = oracles.semihard_candidates(x, labels, ai, pi, 1.0, "squared_l2", rule)
            assert ni in cand
            seen.setdefault((ai, pi), set()).add(ni)
    for (ai, pi), picks in seen.items():  # every candidate turns up over 60 draws
        assert picks == set(oracles.semihard_candidates(x, labels, ai, pi, 1.0, "squared_l2", rule))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert _as_set(miner(x, torch.tensor(labels), g1)) == _as_set(miner(x, torch.tensor(labels), g2))


def test_random_miner_valid_and_uniform() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    x = _x(7, 0)
    counts = torch.zeros(7, 7, 7)
    for s in range(400):
        a, p, n = RandomTripletMiner()(x, labels, torch.Generator().manual_seed(s))
        assert a.tolist() == [0, 1, 2, 3, 5, 6]  # the singleton (4) is no anchor
        counts[a, p, n] += 1
    # anchor 0: 3 positives × 3 negatives, each drawn ~400/9 ≈ 44 times
    c = counts[0][counts[0] > 0]
    assert c.numel() == 9 and c.min() > 20


def test_distance_weights_match_formula() -> None:
    d = torch.tensor([[0.2, 0.7, 1.1, 1.39, 1.5]], dtype=torch.float64)
    w = distance_weights(d, dim=16)
    ref = torch.tensor([[oracles.distance_weight(float(v), 16) for v in d[0]]], dtype=torch.float64)
    assert torch.allclose(w, ref / ref.max())


def test_distance_weighted_miner_samples_by_weight() -> None:
    labels = [0, 0, 1, 1, 2, 2, 3, 3]
    x = _x(8, 1, torch.float32)
    miner = DistanceWeightedMiner(cutoff=0.5, nonzero_loss_cutoff=1.4)
    (anchors, positives, prob), = miner.probabilities(x, torch.tensor(labels))
    dim = x.shape[1]
    for row, a in enumerate(anchors.tolist()):
        w = [0.0 if labels[q] == labels[a] else oracles.distance_weight(oracles.brute_distance(x, a, q, "l2"), dim) for q in range(8)]
        if sum(w) == 0:
            w = [0.0 if labels[q] == labels[a] else 1.0 for q in range(8)]
        assert torch.allclose(prob[row], torch.tensor(w) / sum(w), atol=1e-5)
    for s in range(20):
        a, p, n = miner(x, torch.tensor(labels), torch.Generator().manual_seed(s))
        assert all(labels[i] != labels[j] and prob[k, j] > 0 for k, (i, j) in enumerate(zip(a.tolist(), n.tolist())))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=12), st.integers(0, 1000), st.sampled_from(sorted(list_miners())))
def test_every_named_miner_returns_valid_unique_triplets(labels: list[int], seed: int, name: str) -> None:
    x = _x(len(labels), seed, torch.float32)
    y = torch.tensor(labels)
    a, p, n = create_miner(name)(x, y, torch.Generator().manual_seed(seed))
    assert (y[a] == y[p]).all() and (y[a] != y[n]).all() and (a != p).all()
    assert len(set(zip(a.tolist(), p.tolist(), n.tolist()))) == len(a)


@pytest.mark.parametrize("type_of_triplets", ["all", "hard", "semihard", "easy"])
def test_triplet_margin_miner_identical_to_pml(type_of_triplets: str) -> None:
    pml = pytest.importorskip("pytorch_metric_learning.miners")
    from pytorch_metric_learning.distances import LpDistance

    for seed in range(3):
        x, y = oracles.labelled_unit_batch(seed)
        theirs = pml.TripletMarginMiner(margin=0.2, type_of_triplets=type_of_triplets, distance=LpDistance(normalize_embeddings=False))(x, y)
        ours = TripletMarginMiner(0.2, type_of_triplets, "l2")(x, y)  # type: ignore[arg-type]
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
