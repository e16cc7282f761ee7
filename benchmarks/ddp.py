"""DDP on this machine: steps/s and images/s with 1 vs 2 processes (gloo on CPU), same global batch.

Usage: python benchmarks/ddp.py --json PATH [--steps 40] [--p 16] [--k 4] [--backbone small_cnn] [--size 64]
Both runs train the same config on the synthetic set (200 identities × 12 images) from the same seed; the
global P×K batch is identical, each of the 2 processes embedding P/2 identities with 1 thread (the single
process uses 2 threads). Timing covers the steps after a 5-step warm-up. ``max_weight_diff`` compares the
final weights of the two runs (batch norm statistics fixed, so the runs are mathematically the same).
JSON: per world size {steps_per_s, images_per_s}, speedup, max_weight_diff, device.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from faceprint.config import Config, apply_overrides
from faceprint.data.synth import write_synthetic_dataset
from faceprint.training import Trainer, load_checkpoint
from faceprint.training.distributed import DistInfo


def config(data: Path, out: Path, args: argparse.Namespace, steps: int) -> Config:
    return apply_overrides(Config(), [
        f"data.root={data}", f"train.out={out}", f"data.image_size={args.size}", "data.val_fraction=0",
        "data.test_fraction=0", "data.augment=false", f"train.p={args.p}", f"train.k={args.k}", f"train.steps={steps}",
        "train.eval_every=0", f"train.checkpoint_every={steps}", f"model.backbone={args.backbone}",
        "model.embedding_dim=64", "model.freeze_bn=true", "loss.miner=batch_hard", "optim.optimizer=sgd", "optim.lr=0.05"])


def timed_run(rank: int, world: int, data: str, out: str, args: argparse.Namespace, port: int) -> None:
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(max(1, 2 // world))
    warnings.simplefilter("ignore")
    info = DistInfo(rank, world, rank, "gloo") if world > 1 else None
    trainer = Trainer(config(Path(data), Path(out), args, args.steps + 5), progress=False, dist=info)
    marks: list[float] = []
    trainer.run(on_step=lambda step, _: marks.append(time.perf_counter()) if step in (5, args.steps + 5) else None)
    if rank == 0:
        Path(out, "timing.json").write_text(json.dumps({"seconds": marks[1] - marks[0]}))
    if world > 1:
        dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--backbone", default="small_cnn")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="faceprint-ddp-"))
    data = write_synthetic_dataset(work / "data", identities=200, images_per_identity=12, size=64, seed=0)
    result: dict = {"device": "cpu (gloo)", "backbone": args.backbone, "global_batch": args.p * args.k, "steps": args.steps}
    for world in (1, 2):
        out = work / f"run{world}"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        mp.start_processes(timed_run, args=(world, str(data), str(out), args, port), nprocs=world, join=True,
                           start_method="spawn")
        secs = json.loads((out / "timing.json").read_text())["seconds"]
        result[f"world_{world}"] = {"steps_per_s": round(args.steps / secs, 3),
                                    "images_per_s": round(args.steps * args.p * args.k / secs, 1)}
        print(f"{world} process(es): {args.steps / secs:.2f} steps/s, {args.steps * args.p * args.k / secs:.0f} img/s", flush=True)
    a, b = load_checkpoint(work / "run1")["model"], load_checkpoint(work / "run2")["model"]
    result["max_weight_diff"] = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    result["speedup"] = round(result["world_2"]["steps_per_s"] / result["world_1"]["steps_per_s"], 2)
    print(f"speedup {result['speedup']}x; max weight difference after {args.steps + 5} steps: {result['max_weight_diff']:.2e}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
