"""Offline random triplets vs online mining under the same wall-time budget.

Usage: python benchmarks/train_race.py --json PATH [--budget 75 45] [--out DIR]
Same backbone (small_cnn, 64 px, 64-d), seed and data per dataset (the synthetic set, and
../shared/data/orl split by identity when present); each method trains for the same training
wall time, and held-out verification accuracy is measured every --eval-every seconds (evaluation
time is not counted). Prints the time each method needs to reach the dataset's target accuracy and
the ratio offline/online; writes a PNG of accuracy against wall time per dataset.
JSON: {"runs": [{dataset, method, curve: [[seconds, accuracy], ...], final_accuracy,
time_to_target}], "targets": {...}, "ratios": [{dataset, method, offline_over_online}]}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from faceprint.config import apply_overrides
from faceprint.data.synth import write_synthetic_dataset
from faceprint.demo import demo_config
from faceprint.evaluation.plots import save_curves
from faceprint.evaluation.report import evaluate_folder
from faceprint.training import Trainer, prepare_data

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = {
    "offline_random": {"train.mode": "offline", "loss.miner": "batch_all"},
    "online_batch_all": {"loss.miner": "batch_all", "loss.reduction": "mean_nonzero"},
    "online_batch_hard": {"loss.miner": "batch_hard"},
    "online_semihard": {"loss.miner": "semihard", "loss.semihard_fallback": "hardest"},
    "online_adaptive": {"loss.loss": "adaptive", "loss.miner": "batch_hard", "loss.adaptive_lambda": 1.0},
}


class _Budget(Exception):
    pass


def race(data_root: Path, dataset: str, method: str, over: dict, budget: float, eval_every: float, out: Path, extra: dict) -> dict:
    run = out / f"{dataset}_{method}"
    shutil.rmtree(run, ignore_errors=True)
    base = {"train.steps": 1_000_000, "optim.schedule": "constant", "optim.warmup_steps": 0, "train.eval_every": 0,
            "train.checkpoint_every": 1_000_000, "train.log_every": 50, **extra, **over}
    cfg = apply_overrides(demo_config(str(data_root), str(run)), base)
    data = prepare_data(cfg.data)
    trainer = Trainer(cfg, progress=False, data=data)
    assert data.test is not None
    curve: list[tuple[float, float]] = [(0.0, evaluate_folder(trainer.model, data.test, 64, seed=0).verification.accuracy)]
    trained, mark = 0.0, time.perf_counter()

    def on_step(step: int, result: object) -> None:
        nonlocal trained, mark
        now = time.perf_counter()
        trained += now - mark
        if trained >= curve[-1][0] + eval_every or trained >= budget:
            acc = evaluate_folder(trainer.model, data.test, 64, seed=0).verification.accuracy
            curve.append((round(trained, 1), acc))
            print(f"  {dataset:6} {method:18} {trained:6.1f}s step {step:5d} acc {acc:.3f}", flush=True)
        if trained >= budget:
            raise _Budget
        mark = time.perf_counter()

    try:
        trainer.run(on_step=on_step)
    except _Budget:
        pass
    return {"dataset": dataset, "method": method, "curve": curve, "final_accuracy": curve[-1][1], "steps": trainer.step}


def time_to(curve: list[list[float]] | list[tuple[float, float]], target: float) -> float | None:
    """First time the curve reaches ``target``, linearly interpolated between evaluations."""
    for (t0, a0), (t1, a1) in zip(curve, curve[1:]):
        if a1 >= target:
            return float(t1 if a1 == a0 else t0 + (target - a0) * (t1 - t0) / (a1 - a0)) if a0 < target else float(t0)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--budget", type=float, nargs=2, default=[75.0, 45.0], help="seconds: synthetic, ORL")
    ap.add_argument("--eval-every", type=float, default=7.5)
    ap.add_argument("--targets", type=float, nargs=2, default=[0.80, 0.88], help="accuracy targets: synthetic, ORL")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="recompute targets, ratios and plots from the curves of an earlier --json file (no training)")
    ap.add_argument("--out", type=Path, default=None, help="folder for runs and plots (default: next to --json)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = args.out or args.json.parent / "train_race"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="faceprint_race_"))
    datasets: dict = {}
    if args.reuse is None:
        datasets["synthetic"] = (write_synthetic_dataset(tmp / "synth", 200, 12, 64, 0), args.budget[0], args.targets[0], {})
    if args.reuse is None and (SHARED / "orl").is_dir():
        orl = {"data.test_fraction": 0.25, "data.val_fraction": 0.0, "train.p": 8, "train.k": 4}
        datasets["orl"] = (SHARED / "orl", args.budget[1], args.targets[1], orl)
    budgets = {"synthetic": args.budget[0], "orl": args.budget[1]}
    wanted = {"synthetic": args.targets[0], "orl": args.targets[1]}
    if args.reuse is not None:
        runs = json.loads(args.reuse.read_text())["runs"]
    else:
        runs = []
        for name, (root, budget, _, extra) in datasets.items():
            for method, over in METHODS.items():
                runs.append(race(root, name, method, over, budget, args.eval_every, out, extra))
    ratios, targets = [], {}
    for name in dict.fromkeys(r["dataset"] for r in runs):
        target = targets[name] = wanted[name]
        mine = [r for r in runs if r["dataset"] == name]
        for r in mine:
            r["time_to_target"] = time_to(r["curve"], target)
        save_curves(out / f"{name}.png", [(f"{name}: held-out accuracy vs training wall time", "seconds", "10-fold accuracy",
                                           [(r["method"], np.array([c[0] for c in r["curve"]]),
                                             np.array([c[1] for c in r["curve"]])) for r in mine])])
        off = next(r for r in mine if r["method"] == "offline_random")
        for r in mine:
            if r["method"] == "offline_random":
                continue
            on, off_t = r["time_to_target"], off["time_to_target"]
            ratios.append({"dataset": name, "method": r["method"], "offline_over_online": off_t / on if off_t and on else None,
                           # offline never reached the target within the budget: the ratio is at least this
                           "offline_over_online_at_least": budgets[name] / on if on and off_t is None else None})
    print(f"\ntargets: {targets}\n{'dataset':10} {'method':18} {'final acc':>9} {'t→target':>11} {'offline/online':>15}")
    for r in runs:
        x = next((x for x in ratios if x["dataset"] == r["dataset"] and x["method"] == r["method"]), {})
        ratio = f"{x['offline_over_online']:.2f}x" if x.get("offline_over_online") else (
            f">{x['offline_over_online_at_least']:.1f}x" if x.get("offline_over_online_at_least") else "—")
        ttt = f"{r['time_to_target']:.1f}s" if r["time_to_target"] is not None else "not reached"
        print(f"{r['dataset']:10} {r['method']:18} {r['final_accuracy']:9.3f} {ttt:>11} {ratio:>15}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": runs, "targets": targets, "ratios": ratios}, indent=2) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
