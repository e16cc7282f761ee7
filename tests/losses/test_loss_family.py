"""Batch-all (blockwise), batch-hard and adaptive losses: brute force, gradcheck, PML, diagnostics."""

from __future__ import annotations

import warnings

import pytest
import torch

import faceprint.miners.base as miner_base
from faceprint.losses import AdaptiveTripletLoss, BatchHardTripletLoss, CollapseWarning, TripletMarginLoss, class_mean_mismatch
from faceprint.miners import AllTripletsMiner, BatchHardMiner, SemiHardMiner
from tests.miners import oracles

LABELS = [0, 0, 1, 1, 1, 2, 2, 3, 4, 4]


def _x(seed: int = 0, n: int = len(LABELS), dim: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, dim, dtype=torch.float64, generator=g), dim=1)


@pytest.mark.parametrize("blocks", [None, 5])
@pytest.mark.parametrize("kind", ["squared_l2", "l2", "cosine"])
@pytest.mark.parametrize("reduction", ["mean", "mean_nonzero", "sum"])
@pytest.mark.parametrize("soft", [False, True])
def test_blockwise_batch_all_equals_explicit_triplets(monkeypatch: pytest.MonkeyPatch, blocks: int | None, kind: str, reduction: str, soft: bool) -> None:
    if blocks:
        monkeypatch.setattr(miner_base, "MAX_BLOCK_ELEMENTS", blocks)
    y = torch.tensor(LABELS)
    x1 = _x(1).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    loss = TripletMarginLoss(0.3, kind, reduction, soft)  # type: ignore[arg-type]
    streamed = loss(x1, y)
    explicit = loss(x2, y, AllTripletsMiner(kind)(x2, y))  # type: ignore[arg-type]
    want = oracles.triplet_loss(x1.detach(), oracles.all_triplets(LABELS), 0.3, kind, reduction, soft)
    assert streamed.loss.item() == pytest.approx(want, rel=1e-9)
    assert (streamed.n_triplets, streamed.n_active) == (explicit.n_triplets, explicit.n_active)
    assert streamed.mean_ap == pytest.approx(explicit.mean_ap) and streamed.mean_an == pytest.approx(explicit.mean_an)
    streamed.loss.backward()
    explicit.loss.backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-12)


def test_batch_all_gradcheck_through_checkpointed_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(miner_base, "MAX_BLOCK_ELEMENTS", 8)
    y = torch.tensor(LABELS)
    x = _x(2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: TripletMarginLoss(0.5, "l2", "mean")(e, y).loss, (x,))


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_loss(soft: bool) -> None:
    y = torch.tensor(LABELS)
    x = _x(3)
    got = BatchHardTripletLoss(0.2, "squared_l2", soft)(x, y)
    want = oracles.triplet_loss(x, oracles.batch_hard(x, LABELS, "squared_l2"), 0.2, "squared_l2", "mean", soft)
    assert got.loss.item() == pytest.approx(want, rel=1e-9)
    assert got.n_triplets == sum(1 for a in range(len(LABELS)) if LABELS.count(LABELS[a]) > 1)


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_gradcheck(soft: bool) -> None:
    y = torch.tensor(LABELS)
    x = _x(6).requires_grad_(True)
    trip = BatchHardMiner()(x, y)
    loss = BatchHardTripletLoss(0.3, "l2", soft)
    assert torch.autograd.gradcheck(lambda e: loss(e, y, trip).loss, (x,))


@pytest.mark.parametrize("norm", ["l2", "sq_l2"])
@pytest.mark.parametrize("members", ["pn", "apn"])
def test_adaptive_loss_matches_brute_force(norm: str, members: str) -> None:
    y = torch.tensor(LABELS)
    x = _x(4)
    for miner in (BatchHardMiner(), SemiHardMiner(0.5, fallback="hardest")):
        trip = miner(x, y)
        tl = list(zip(*(t.tolist() for t in trip)))
        match = oracles.class_mean_mismatch(x, LABELS, tl, norm, members)
        assert class_mean_mismatch(x, y, trip, norm, members).item() == pytest.approx(match, rel=1e-9)  # type: ignore[arg-type]
        r = AdaptiveTripletLoss(0.2, 0.7, match_norm=norm, match_members=members)(x, y, trip)  # type: ignore[arg-type]
        want = oracles.triplet_loss(x, tl, 0.2, "squared_l2", "mean") + 0.7 * match
        assert r.loss.item() == pytest.approx(want, rel=1e-9)
        assert r.extras["match"] == pytest.approx(match, rel=1e-9)


@pytest.mark.parametrize("norm", ["l2", "sq_l2"])
@pytest.mark.parametrize("members", ["pn", "apn"])
def test_adaptive_gradcheck_and_match_term_has_gradient(norm: str, members: str) -> None:
    y = torch.tensor(LABELS)
    x = _x(5).requires_grad_(True)
    trip = BatchHardMiner()(x, y)
    loss = AdaptiveTripletLoss(0.2, 1.0, match_norm=norm, match_members=members)  # type: ignore[arg-type]
    assert torch.autograd.gradcheck(lambda e: loss(e, y, trip).loss, (x,))
    g = torch.autograd.grad(class_mean_mismatch(x, y, trip, norm, members), x)[0]  # type: ignore[arg-type]
    assert g.abs().sum() > 0


def test_collapse_warning_and_spread() -> None:
    y = torch.tensor([0, 0, 1, 1])
    collapsed = torch.nn.functional.normalize(torch.ones(4, 3) + 1e-4 * torch.randn(4, 3), dim=1)
    with pytest.warns(CollapseWarning, match="collapsed"):
        r = TripletMarginLoss()(collapsed, y)
    assert r.spread < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        r = TripletMarginLoss()(_x(0, 4, 3).float(), y)
    assert 0.3 < r.spread <= 1.0


@pytest.mark.parametrize("type_of_triplets", ["all", "hard", "semihard", "easy"])
def test_loss_matches_pml_for_each_triplet_type(type_of_triplets: str) -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    from faceprint.miners import TripletMarginMiner

    for seed in range(3):
        x, y = oracles.labelled_unit_batch(seed)
        theirs_t = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets=type_of_triplets)(x, y)
        theirs = pml_losses.TripletMarginLoss(margin=0.2)(x, y, theirs_t)
        ours_t = TripletMarginMiner(0.2, type_of_triplets, "l2")(x, y)  # type: ignore[arg-type]
        ours = TripletMarginLoss(0.2, "l2", "mean_nonzero")(x, y, ours_t)
        assert ours.loss.item() == pytest.approx(theirs.item(), abs=1e-6)
