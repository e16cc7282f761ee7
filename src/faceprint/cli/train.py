"""``faceprint train`` and ``faceprint demo``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from faceprint.cli.common import console, metrics_table, write_json

__all__ = ["demo_cmd", "train_cmd"]


def train_cmd(
    data: Annotated[Optional[Path], typer.Argument(help="Identity-folder dataset (overrides data.root).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML or JSON config file.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder (train.out).")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="model.backbone")] = None,
    embedding_dim: Annotated[Optional[int], typer.Option(help="model.embedding_dim")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="data.image_size")] = None,
    p: Annotated[Optional[int], typer.Option("--p", help="Identities per batch (train.p).")] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Images per identity (train.k).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="train.steps")] = None,
    lr: Annotated[Optional[float], typer.Option(help="optim.lr")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="optim.optimizer: adam, adamw, sgd, adagrad")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="optim.schedule: constant, cosine, step, exponential")] = None,
    margin: Annotated[Optional[float], typer.Option(help="loss.margin")] = None,
    miner: Annotated[Optional[str], typer.Option(help="loss.miner")] = None,
    seed: Annotated[Optional[int], typer.Option(help="train.seed")] = None,
    init: Annotated[Optional[str], typer.Option(help="model.init: pretrained weights name/folder or a checkpoint to fine-tune.")] = None,
    freeze: Annotated[Optional[str], typer.Option(help="model.freeze: none, stem, all_but_last.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any config key: section.key=value (repeatable).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    stop_after: Annotated[Optional[int], typer.Option(help="Stop (with a checkpoint) after this many total steps.")] = None,
    nproc: Annotated[int, typer.Option(help="Processes on this machine (DDP via torchrun; gloo on CPU, NCCL on GPU).")] = 1,
) -> None:
    """Train an embedding network with triplet loss and online mining."""
    from faceprint.config import Config, apply_overrides, load_config
    from faceprint.training import train

    cfg = load_config(config) if config else Config()
    flags: dict[str, Any] = {
        "data.root": str(data) if data else None, "train.out": str(out) if out else None,
        "model.backbone": backbone, "model.embedding_dim": embedding_dim, "data.image_size": image_size,
        "train.p": p, "train.k": k, "train.steps": steps, "optim.lr": lr, "optim.optimizer": optimizer,
        "optim.schedule": schedule, "loss.margin": margin, "loss.miner": miner, "train.seed": seed,
        "model.init": init, "model.freeze": freeze,
    }
    cfg = apply_overrides(apply_overrides(cfg, set_ or []), flags)
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        from faceprint.training.launch import launch_local

        argv = sys.argv[sys.argv.index("train") + 1 :] if "train" in sys.argv else []
        launch_local(nproc, argv, Path(cfg.train.out))
        return
    result = train(cfg, resume=resume, stop_after=stop_after)
    if os.environ.get("RANK", "0") != "0":
        return
    state = "finished" if result.finished else "stopped"
    console.print(f"{state} at step {result.step}; checkpoint {result.checkpoint}")
    if result.history:
        console.print(metrics_table(f"validation at step {result.history[-1]['step']}", {"model": result.history[-1]}))


def demo_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the synthetic data and the run.")] = Path("runs/demo"),
    identities: Annotated[int, typer.Option(help="Synthetic identities.")] = 200,
    images_per_identity: Annotated[int, typer.Option(help="Images per identity.")] = 12,
    steps: Annotated[int, typer.Option(help="Training steps.")] = 900,
    seed: Annotated[int, typer.Option(help="Seed for data, split and training.")] = 0,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write {pixels, model} metrics here.")] = None,
) -> None:
    """Synthesize faces, train, and compare the trained model with raw pixels on held-out identities."""
    from faceprint.demo import run_demo

    report = run_demo(out, identities, images_per_identity, steps=steps, seed=seed, log=console.print)
    console.print(metrics_table(
        f"held-out identities: {report['test_images']} images, {report['test_pairs']} pairs",
        {"raw pixels": report["pixels"], "trained model": report["model"]},
    ))
    console.print(f"total time {report['seconds']:.0f} s; run folder {report['run_dir']}")
    write_json(json_path, report)
