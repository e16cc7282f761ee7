"""Miners + losses: ours vs pytorch-metric-learning (PML) on the cases where their definitions coincide.

Usage: python benchmarks/miners.py --json PATH [--batches 128 512 2048] [--quick]
One line per case: median ms of mine + loss forward for each, speedup = pml_ms / ours_ms, whether the
triplet sets are identical, and each side's peak extra memory (forked child, RSS high-water mark).
JSON: a list of records with case, batch, dim, classes, ours_ms, pml_ms, speedup, identical,
ours_peak_mib, pml_peak_mib, n_triplets, note.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning import miners as pml_miners

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_child, median_ms  # noqa: E402

from faceprint.losses import TripletMarginLoss  # noqa: E402
from faceprint.miners import BatchHardMiner, TripletMarginMiner  # noqa: E402

PML_MAX_CUBE = 2**28  # PML builds a B×B×B mask for all-triplet cases: skip beyond 268M entries (RAM)
OURS_MAX_TRIPLETS = 2**27  # returning index tensors for >134M triplets needs >3 GB: skip


def cases() -> dict[str, tuple[Callable, Callable, bool]]:
    """name → (ours(x, y) -> (triplets, loss), pml(x, y) -> (triplets, loss), needs all triplets)."""
    loss = TripletMarginLoss(0.2, "l2", "mean_nonzero")
    # Our inputs are already unit vectors: PML re-normalizing them would only add rounding noise.
    pml_loss = pml_losses.TripletMarginLoss(margin=0.2, distance=LpDistance(normalize_embeddings=False))
    out: dict[str, tuple[Callable, Callable, bool]] = {}
    for t in ("all", "hard", "semihard", "easy"):
        ours_m = TripletMarginMiner(0.2, t, "l2")  # type: ignore[arg-type]
        pml_m = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets=t, distance=LpDistance(normalize_embeddings=False))

        def ours(x, y, m=ours_m):  # type: ignore[no-untyped-def]
            trip = m(x, y)
            return trip, loss(x, y, trip).loss

        def pml(x, y, m=pml_m):  # type: ignore[no-untyped-def]
            trip = m(x, y)
            return trip, pml_loss(x, y, trip)

        out[f"triplet_margin_{t}"] = (ours, pml, True)
    bh, pml_bh = BatchHardMiner("l2"), pml_miners.BatchHardMiner(distance=LpDistance(normalize_embeddings=False))

    def ours_bh(x, y):  # type: ignore[no-untyped-def]
        trip = bh(x, y)
        return trip, loss(x, y, trip).loss

    def pml_bh_case(x, y):  # type: ignore[no-untyped-def]
        trip = pml_bh(x, y)
        return trip, pml_loss(x, y, trip)

    out["batch_hard"] = (ours_bh, pml_bh_case, False)
    out["batch_all_loss"] = (lambda x, y: (None, loss(x, y).loss), lambda x, y: (None, pml_loss(x, y)), True)
    return out


def _key(trip: tuple[torch.Tensor, ...] | None, b: int) -> np.ndarray | None:
    if trip is None:
        return None
    a, p, n = (t.long() for t in trip)
    return torch.sort(a * b * b + p * b + n).values.numpy()


def _n_valid(b: int, classes: int) -> int:
    k = b // classes
    return classes * k * (k - 1) * (b - k)


def measure(fn: Callable, b: int, dim: int, classes: int, threads: int) -> tuple[float, np.ndarray | None, float]:
    """Runs in the forked child: build the batch, time fn, return (ms, sorted triplet keys, loss)."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(b + dim + classes)
    y = torch.arange(classes).repeat_interleave(b // classes)
    x = torch.nn.functional.normalize(torch.randn(b, dim, generator=g), dim=1)
    trip, loss = fn(x, y)
    return median_ms(lambda: fn(x, y)), _key(trip, b), float(loss)


def once(fn: Callable, b: int, dim: int, classes: int, threads: int) -> None:
    """One call, for the peak-memory child."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(b + dim + classes)
    y = torch.arange(classes).repeat_interleave(b // classes)
    fn(torch.nn.functional.normalize(torch.randn(b, dim, generator=g), dim=1), y)


def run_case(name: str, ours: Callable, pml: Callable, all_trip: bool, b: int, dim: int, classes: int, threads: int) -> dict:
    # The parent runs no torch op: libgomp's thread pool does not survive fork, so all work is in children.
    n_valid = _n_valid(b, classes)
    rec = {"case": name, "batch": b, "dim": dim, "classes": classes, "n_valid_triplets": n_valid, "note": ""}
    run_pml = not all_trip or b**3 <= PML_MAX_CUBE
    run_ours = not (all_trip and name != "batch_all_loss" and n_valid > OURS_MAX_TRIPLETS)
    none = ((None, None, None), None)
    (o_ms, o_key, o_loss), _ = in_child(lambda: measure(ours, b, dim, classes, threads), fixed_malloc=False) if run_ours else none
    (p_ms, p_key, p_loss), _ = in_child(lambda: measure(pml, b, dim, classes, threads), fixed_malloc=False) if run_pml else none
    o_peak = in_child(lambda: once(ours, b, dim, classes, threads))[1] if run_ours else None
    p_peak = in_child(lambda: once(pml, b, dim, classes, threads))[1] if run_pml else None
    rec.update(ours_ms=o_ms, pml_ms=p_ms, ours_peak_mib=o_peak, pml_peak_mib=p_peak, ours_loss=o_loss, pml_loss=p_loss)
    rec["speedup"] = round(p_ms / o_ms, 2) if o_ms and p_ms else None
    if o_key is not None and p_key is not None:
        rec["identical"] = bool(np.array_equal(o_key, p_key))
    elif o_loss is not None and p_loss is not None:
        rec["identical"] = abs(o_loss - p_loss) <= 1e-5  # batch-all: no triplet tensors; compare the loss
    else:
        rec["identical"] = None
    if not run_pml:
        rec["note"] = f"PML skipped: its B×B×B mask would hold {b**3:.1e} entries"
    if not run_ours:
        rec["note"] = f"skipped: {n_valid:.1e} valid triplets as index tensors"
    return rec


def big_batch(b: int, threads: int) -> list[dict]:
    """Ours only, forward + backward at a batch PML cannot hold: time and peak memory."""
    from faceprint.miners import SemiHardMiner

    loss = TripletMarginLoss(0.2, "squared_l2", "mean_nonzero")
    semi = SemiHardMiner(0.2, "facenet", "hardest", "drop")

    def step(kind: str) -> tuple[float, None, float]:
        torch.set_num_threads(threads)
        g = torch.Generator().manual_seed(b)
        y = torch.arange(128).repeat_interleave(b // 128)
        x = torch.nn.functional.normalize(torch.randn(b, 128, generator=g), dim=1).requires_grad_(True)

        def run() -> float:
            r = loss(x, y) if kind == "batch_all" else loss(x, y, semi(x, y))
            r.loss.backward()
            return float(r.loss.detach())

        return median_ms(run, repeats=3), None, run()

    out = []
    for kind in ("batch_all", "semihard"):
        (ms, _, value), _ = in_child(lambda: step(kind), fixed_malloc=False)
        _, peak = in_child(lambda: step(kind))
        out.append({"case": f"{kind}_fwd_bwd", "batch": b, "dim": 128, "classes": 128, "ours_ms": ms, "pml_ms": None,
                    "speedup": None, "identical": None, "ours_peak_mib": peak, "pml_peak_mib": None, "ours_loss": value,
                    "note": f"ours only: a B×B×B tensor would hold {b**3:.1e} entries"})
        print(f"{kind + '_fwd_bwd':22} {b:>5}  128  128 {ms:9.1f}         —        —     — {peak:9.1f}        —", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--batches", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--classes", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--big-batch", type=int, default=4096, help="batch-all / semi-hard forward+backward at this batch (0: skip)")
    args = ap.parse_args()
    records = []
    print(f"{'case':22} {'B':>5} {'dim':>4} {'cls':>4} {'ours ms':>9} {'PML ms':>9} {'speedup':>8} {'same':>5} {'ours MiB':>9} {'PML MiB':>8}")
    for b in args.batches:
        for dim in args.dims:
            for classes in args.classes:
                for name, (ours, pml, all_trip) in cases().items():
                    r = run_case(name, ours, pml, all_trip, b, dim, classes, args.threads)
                    records.append(r)
                    f = lambda v, fmt: format(v, fmt) if v is not None else "—"  # noqa: E731
                    print(f"{name:22} {b:>5} {dim:>4} {classes:>4} {f(r['ours_ms'], '9.2f')} {f(r['pml_ms'], '9.2f')} "
                          f"{f(r['speedup'], '7.2f')}x {str(r['identical']):>5} {f(r['ours_peak_mib'], '9.1f')} {f(r['pml_peak_mib'], '8.1f')} {r['note']}",
                          flush=True)
    if args.big_batch:
        records += big_batch(args.big_batch, args.threads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
