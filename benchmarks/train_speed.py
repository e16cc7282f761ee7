"""How close ``faceprint train`` runs to the speed of the network it trains, and what mixed precision and compile buy.

Usage: python benchmarks/train_speed.py --json PATH [--backbone mobilefacenet] [--size 112] [--p 8] [--k 4]
       [--steps 40] [--gap-steps 300] [--work DIR]
One model, batch (P×K) and optimizer throughout. ``bare_img_s``: the trainer's own step (forward, mining, loss,
backward, optimizer) on batches already in memory. ``trainer_img_s``: ``Trainer.run`` on a pack (steady state: the
clock starts after the warm-up steps), with its logging and checkpoints. ``folder_trainer_img_s``: the same on the
loose JPEG folder the pack came from (no in-memory cache, as for a dataset larger than memory). ``bf16_speedup`` and
``compile_speedup``: bare steps with ``train.amp=bf16`` / ``train.compile=true`` over float32 (1.0 with a reason when
the CPU lacks bf16). ``bf16_loss_gap``: |mean loss of the last 50 of ``--gap-steps`` steps of fresh augmented
batches, bf16 vs float32| / float32; ``fp32_seed_gap`` the same for float32 against float32 with another seed (the
metric's own noise).
``breakdown``: where a trainer step's time goes (waiting for data, the step, logging and checkpoints).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faceprint.config import Config, apply_overrides  # noqa: E402
from faceprint.data.packed import write_pack  # noqa: E402
from faceprint.data.sources import open_dataset  # noqa: E402
from faceprint.data.synth import write_synthetic_dataset  # noqa: E402
from faceprint.training import Trainer  # noqa: E402
from faceprint.training.accel import cpu_flags, cpu_has_bf16  # noqa: E402


def make_data(work: Path, size: int, identities: int, per_id: int) -> tuple[Path, Path]:
    """A loose JPEG folder (aligned faces at 250 px, as LFW's files) and its pack at the training size."""
    png, jpg, pack = work / "png", work / "jpeg", work / "pack"
    if not (pack / "pack.json").is_file():
        shutil.rmtree(work, ignore_errors=True)
        write_synthetic_dataset(png, identities, per_id, size=64, seed=0)
        for f in sorted(png.rglob("*.png")):
            dst = jpg / f.parent.name / (f.stem + ".jpg")
            dst.parent.mkdir(parents=True, exist_ok=True)
            Image.open(f).convert("RGB").resize((250, 250), Image.BILINEAR).save(dst, quality=90)
        write_pack(pack, open_dataset(jpg), size)
    return jpg, pack


def config(args: argparse.Namespace, root: Path, out: Path, *extra: str) -> Config:
    if out.exists():
        shutil.rmtree(out)
    return apply_overrides(Config(), [
        f"data.root={root}", f"train.out={out}", f"data.image_size={args.size}", "data.cache=false",
        "data.val_fraction=0", "data.test_fraction=0", f"model.backbone={args.backbone}", "model.embedding_dim=128",
        f"train.p={args.p}", f"train.k={args.k}", "train.eval_every=0", "optim.optimizer=adam", "optim.lr=0.001",
        f"train.threads={args.threads}", *extra])


def bare(args: argparse.Namespace, pack: Path, *extra: str, steps: int | None = None) -> tuple[float, list[float]]:
    """images/s of the trainer's step on batches already in memory (after 3 warm-up steps), and every step's loss."""
    steps = steps or args.steps
    trainer = Trainer(config(args, pack, args.work / "bare", f"train.steps={steps + 3}", *extra), progress=False)
    loader = iter(trainer._loader(min(16, steps + 3)))
    batches = [next(loader) for _ in range(min(16, steps + 3))]  # decoded once, then cycled
    losses = []
    for i in range(3):
        losses.append(float(trainer.train_step(*batches[i % len(batches)]).loss.detach()))
    t0 = time.perf_counter()
    for i in range(3, steps + 3):
        losses.append(float(trainer.train_step(*batches[i % len(batches)]).loss.detach()))  # a host sync per step
    return steps * args.p * args.k / (time.perf_counter() - t0), losses


def gap_losses(args: argparse.Namespace, pack: Path, *extra: str) -> list[float]:
    """Every step's loss over ``--gap-steps`` steps of fresh, augmented batches (the trainer's own loader), so the
    network cannot memorise a few batches and drive the loss to zero."""
    trainer = Trainer(config(args, pack, args.work / "gap", f"train.steps={args.gap_steps}", *extra), progress=False)
    return [float(trainer.train_step(x, y).loss.detach()) for x, y in trainer._loader(args.gap_steps)]


def trainer_speed(args: argparse.Namespace, root: Path, name: str, *extra: str) -> tuple[float, dict[str, float]]:
    """images/s of ``Trainer.run`` after ``--warmup`` steps, and where the steady-state time went."""
    total = args.warmup + args.steps
    trainer = Trainer(config(args, root, args.work / name, f"train.steps={total}", "train.checkpoint_every=20",
                             "train.log_every=10", *extra), progress=False)
    marks: dict[int, float] = {}
    step_time = {"s": 0.0}
    inner = trainer.train_step

    def timed(images: torch.Tensor, labels: torch.Tensor):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = inner(images, labels)
        if trainer.step > args.warmup:
            step_time["s"] += time.perf_counter() - t
        return out

    trainer.train_step = timed  # type: ignore[method-assign]
    trainer.run(on_step=lambda step, _: marks.__setitem__(step, time.perf_counter()))
    wall = marks[total] - marks[args.warmup]
    return args.steps * args.p * args.k / wall, {"step_s": round(step_time["s"], 3), "wall_s": round(wall, 3),
                                                 "data_and_rest_s": round(wall - step_time["s"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--backbone", default="mobilefacenet")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--steps", type=int, default=40, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--gap-steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--identities", type=int, default=64)
    ap.add_argument("--parts", default="trainer,bf16,gap,seedgap,compile",
                    help="what to measure (bare_img_s always); earlier results in --json are kept for the rest")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-train-speed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder, pack = make_data(args.work / "data", args.size, args.identities, 10)
    result: dict[str, object] = {"backbone": args.backbone, "size": args.size, "batch": args.p * args.k,
                                 "optimizer": "adam", "threads": args.threads, "timed_steps": args.steps,
                                 "cpu_flags": sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16",
                                                                     "avx512_vnni", "avx_vnni", "amx_tile"})}
    parts = set(args.parts.split(","))
    if args.json.is_file():  # parts measured by an earlier run are kept unless measured again
        result = {**json.loads(args.json.read_text()), **result}
    if parts & {"trainer", "bf16", "compile"}:  # the ratios' baseline, measured in the same run as they are
        bare_fp32, _ = bare(args, pack)
        result["bare_img_s"] = round(bare_fp32, 2)
        print(f"bare {bare_fp32:.1f} img/s", flush=True)
    if "trainer" in parts:
        packed, breakdown = trainer_speed(args, pack, "packed")
        result.update(trainer_img_s=round(packed, 2), trainer_over_bare=round(packed / bare_fp32, 3), breakdown=breakdown)
        print(f"trainer on the pack {packed:.1f} img/s ({packed / bare_fp32:.3f} of bare) {breakdown}", flush=True)
        loose, loose_breakdown = trainer_speed(args, folder, "folder")
        result.update(folder_trainer_img_s=round(loose, 2), packed_over_folder=round(packed / loose, 3),
                      folder_breakdown=loose_breakdown)
        print(f"trainer on the JPEG folder {loose:.1f} img/s; pack over folder {packed / loose:.2f}×", flush=True)
        worker, _ = trainer_speed(args, folder, "folder-w1", "data.workers=1")
        result["folder_trainer_workers1_img_s"] = round(worker, 2)
        print(f"trainer on the JPEG folder, 1 loader worker: {worker:.1f} img/s", flush=True)
    if "bf16" in parts:
        if cpu_has_bf16():
            bf16, _ = bare(args, pack, "train.amp=bf16")
            result["bf16_speedup"] = round(bf16 / bare_fp32, 3)
            print(f"bf16 {bf16:.1f} img/s ({bf16 / bare_fp32:.2f}×)", flush=True)
        else:
            result.update(bf16_speedup=1.0, bf16_reason="no AVX512-BF16/AMX on this CPU: bf16 falls back")
    if "gap" in parts and cpu_has_bf16():
        a, b = np.mean(gap_losses(args, pack)[-50:]), np.mean(gap_losses(args, pack, "train.amp=bf16")[-50:])
        result.update(bf16_loss_gap=round(float(abs(b - a) / a), 4), fp32_last50_loss=round(float(a), 4),
                      bf16_last50_loss=round(float(b), 4), gap_steps=args.gap_steps)
        print(f"loss over the last 50 of {args.gap_steps} steps: fp32 {a:.4f}, bf16 {b:.4f}", flush=True)
    if "seedgap" in parts:  # the metric's own noise: float32 against float32 with another seed
        a = np.mean(gap_losses(args, pack)[-50:])
        c = np.mean(gap_losses(args, pack, "train.seed=1")[-50:])
        result.update(fp32_seed_gap=round(float(abs(c - a) / a), 4), fp32_seed1_last50_loss=round(float(c), 4))
        print(f"float32, seed 0 vs seed 1: {a:.4f} vs {c:.4f}", flush=True)
    if "compile" in parts:
        try:
            t0 = time.perf_counter()
            compiled, _ = bare(args, pack, "train.compile=true")
            result.update(compile_speedup=round(compiled / bare_fp32, 3), compile_total_s=round(time.perf_counter() - t0, 1))
            print(f"compiled {compiled:.1f} img/s ({compiled / bare_fp32:.2f}×)", flush=True)
        except Exception as exc:  # noqa: BLE001 - no compiler toolchain: report, do not fail the run
            result.update(compile_speedup=1.0, compile_reason=f"torch.compile failed: {str(exc).splitlines()[0][:200]}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
