"""The triplet margin loss against brute force, gradcheck and pytorch-metric-learning."""

from __future__ import annotations

import pytest
import torch

from faceprint.losses import TripletMarginLoss
from faceprint.miners import AllTripletsMiner, BatchHardMiner
from tests.miners import oracles

LABELS = [0, 0, 1, 1, 1, 2, 2, 3, 4, 4]


@pytest.mark.parametrize("kind", ["squared_l2", "l2", "cosine"])
@pytest.mark.parametrize("reduction", ["mean", "mean_nonzero", "sum"])
@pytest.mark.parametrize("margin", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("soft", [False, True])
def test_matches_brute_force(kind: str, reduction: str, margin: float, soft: bool) -> None:
    x = torch.nn.functional.normalize(torch.randn(len(LABELS), 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), dim=1)
    y = torch.tensor(LABELS)
    for miner in (AllTripletsMiner(kind), BatchHardMiner(kind)):  # type: ignore[arg-type]
        trip = miner(x, y)
        got = TripletMarginLoss(margin, kind, reduction, soft)(x, y, trip)  # type: ignore[arg-type]
        want = oracles.triplet_loss(x, list(zip(*(t.tolist() for t in trip))), margin, kind, reduction, soft)
        assert got.loss.item() == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert got.n_triplets == len(trip[0])


def test_default_mines_all_triplets_and_reports_diagnostics() -> None:
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.05, 0.0], [5.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1])
    r = TripletMarginLoss(margin=0.2, distance="l2")(x, y)
    assert r.n_triplets == len(oracles.all_triplets([0, 0, 1, 1]))  # 8
    # inactive: only (0,1,3) and (1,0,3), whose far negative 3 clears the margin; the B anchors 2 and 3
    # sit 4.95 from their positive, so every one of their triplets violates it.
    assert r.n_active == 6
    assert r.active_fraction == pytest.approx(0.75)
    assert r.mean_ap == pytest.approx((0.1 * 4 + 4.95 * 4) / 8)


def test_no_triplets_gives_zero_loss_with_gradient() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    r = TripletMarginLoss()(x, torch.tensor([0, 1, 2, 3]))
    assert r.loss.item() == 0.0 and r.n_triplets == 0
    r.loss.backward()
    assert x.grad is not None and torch.all(x.grad == 0)


@pytest.mark.parametrize("kind", ["squared_l2", "l2", "cosine"])
@pytest.mark.parametrize("soft", [False, True])
def test_gradcheck(kind: str, soft: bool) -> None:
    y = torch.tensor(LABELS)
    x = torch.randn(len(LABELS), 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    trip = AllTripletsMiner(kind)(x, y)  # type: ignore[arg-type]
    loss = TripletMarginLoss(0.3, kind, "mean", soft)  # type: ignore[arg-type]
    assert torch.autograd.gradcheck(lambda e: loss(e, y, trip).loss, (x,))


def test_l2_gradient_finite_at_zero_distance() -> None:
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    r = TripletMarginLoss(0.5, "l2")(x, torch.tensor([0, 0, 1]))
    r.loss.backward()
    assert torch.isfinite(x.grad).all()


def test_matches_pytorch_metric_learning() -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    for seed in range(3):
        x, y = oracles.labelled_unit_batch(seed, n=48, classes=6, dim=8)
        # PML defaults: L2 distance (not squared), mean over triplets with positive loss.
        trip = pml_miners.BatchHardMiner()(x, y)
        theirs = pml_losses.TripletMarginLoss(margin=0.2)(x, y, trip)
        ours = TripletMarginLoss(0.2, "l2", "mean_nonzero")(x, y, BatchHardMiner("l2")(x, y))
        assert ours.loss.item() == pytest.approx(theirs.item(), abs=1e-6)
        theirs_all = pml_losses.TripletMarginLoss(margin=0.2)(x, y)
        ours_all = TripletMarginLoss(0.2, "l2", "mean_nonzero")(x, y)
        assert ours_all.loss.item() == pytest.approx(theirs_all.item(), abs=1e-6)
