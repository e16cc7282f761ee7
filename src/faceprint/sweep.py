"""Grid sweeps (seed 002's experiment table): train every combination, evaluate on held-out identities,
write a Markdown/CSV table and one PNG of train/dev accuracy and loss per run. Resumable."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.config import Config, ConfigError, apply_overrides, config_from_dict, parse_value
from faceprint.evaluation.plots import save_curves
from faceprint.evaluation.report import evaluate_folder
from faceprint.io import atomic_write_json, atomic_write_text
from faceprint.training.checkpoint import find_checkpoints
from faceprint.training.data_setup import prepare_data
from faceprint.training.trainer import Trainer

__all__ = ["ALIASES", "expand_grid", "load_sweep_config", "parse_grid", "run_sweep"]

ALIASES = {"backbone": "model.backbone", "embedding_dim": "model.embedding_dim", "lr": "optim.lr", "miner": "loss.miner",
           "margin": "loss.margin", "steps": "train.steps", "image_size": "data.image_size"}


def load_sweep_config(path: str | Path) -> tuple[Config, dict[str, list[Any]]]:
    """A training config whose optional ``[sweep] grid = {key = [values]}`` table gives the grid."""
    d = tomllib.loads(Path(path).read_text())
    grid = d.pop("sweep", {}).get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{path}: [sweep] grid must map keys to non-empty lists")
    return config_from_dict(d), grid


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["backbone=resnet18,alexnet", "batch=16,32"]`` → {"backbone": [...], "batch": [16, 32]}."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"grid entry {item!r} must look like key=v1,v2")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return grid


def _overrides(cfg: Config, combo: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in combo.items():
        if key == "batch":  # P × K images: keep K, choose P
            k = cfg.train.k
            if value % k or value // k < 2:
                raise ConfigError(f"batch {value} must be a multiple of train.k={k} with at least 2 identities")
            out["train.p"] = value // k
        else:
            out[ALIASES.get(key, key)] = value
    return out


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, in the order the keys and values were given."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _run_name(combo: dict[str, Any]) -> str:
    return "_".join(f"{k}={v}" for k, v in combo.items()).replace("/", "-")


def _plot(path: Path, name: str, history: list[dict[str, Any]], losses: list[tuple[int, float]]) -> None:
    steps = np.array([h["step"] for h in history], float)
    acc = [("dev", steps, np.array([h["accuracy"] for h in history]))]
    if history and "train_accuracy" in history[0]:
        acc.insert(0, ("train", steps, np.array([h["train_accuracy"] for h in history])))
    panels = [(f"{name}: verification accuracy", "step", "accuracy", acc)]
    if losses:
        panels.append(("training loss", "step", "loss",
                       [("loss", np.array([s for s, _ in losses], float), np.array([v for _, v in losses]))]))
    save_curves(path, panels)


def _run_one(cfg: Config, out: Path, name: str, progress: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = prepare_data(cfg.data)
    trainer = Trainer(cfg, resume=bool(find_checkpoints(cfg.train.out)), progress=progress, data=data)
    result = trainer.run()
    if data.test is None:
        raise ConfigError("a sweep needs test identities: set data.test_fraction > 0")
    test = evaluate_folder(trainer.model, data.test, cfg.data.image_size, cfg.train.eval_pairs_per_fold, seed=cfg.train.seed)
    _plot(out / f"{name}.png", name, result.history, result.loss_history)
    return {**test.summary(), "wall_s": round(time.perf_counter() - t0, 1), "steps": result.step}


def run_sweep(base: Config, grid: dict[str, list[Any]], out: str | Path, progress: bool = True,
              log: Any = print) -> list[dict[str, Any]]:
    """Train and evaluate every grid point; finished points (with a result.json) are skipped."""
    out = Path(out)
    rows = []
    combos = expand_grid(grid)
    for i, combo in enumerate(combos, start=1):
        name = _run_name(combo)
        run_dir = out / name
        done = run_dir / "result.json"
        if done.exists():
            rows.append(json.loads(done.read_text()))
            log(f"[{i}/{len(combos)}] {name}: done before, skipped")
            continue
        cfg = apply_overrides(base, {**_overrides(base, combo), "train.out": str(run_dir)})
        log(f"[{i}/{len(combos)}] {name}")
        row = {"run": name, **combo, **_run_one(cfg, out, name, progress)}
        atomic_write_json(done, row)
        rows.append(row)
    write_table(out, rows, list(grid))
    return rows


def write_table(out: Path, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """``results.md`` and ``results.csv``: grid values, accuracy ± std, VAL@FAR, AUC, wall time."""
    cols = [*keys, "accuracy", "accuracy_std", "val", "far", "auc", "eer", "rank1", "wall_s"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["run", *cols], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    lines = ["| " + " | ".join([*keys, "accuracy", "VAL@FAR=1e-3", "AUC", "rank-1", "wall time"]) + " |",
             "|" + "---|" * (len(keys) + 5)]
    for r in rows:
        lines.append("| " + " | ".join([*(str(r[k]) for k in keys), f"{r['accuracy']:.3f} ± {r['accuracy_std']:.3f}",
                                         f"{r['val']:.3f}", f"{r['auc']:.3f}", f"{r['rank1']:.3f}", f"{r['wall_s']:.0f} s"]) + " |")
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
