"""The sweep command: a tiny grid trains, writes the table and curves, and resumes by skipping finished runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprint.config import Config, ConfigError, apply_overrides
from faceprint.sweep import expand_grid, parse_grid, run_sweep


def test_parse_and_expand_grid() -> None:
    grid = parse_grid(["backbone=resnet18,alexnet", "batch=16,32", "lr=0.001"])
    assert grid == {"backbone": ["resnet18", "alexnet"], "batch": [16, 32], "lr": [0.001]}
    combos = expand_grid(grid)
    assert len(combos) == 4 and combos[1] == {"backbone": "resnet18", "batch": 32, "lr": 0.001}
    with pytest.raises(ConfigError, match="key=v1,v2"):
        parse_grid(["backbone"])


def test_tiny_sweep_writes_table_and_resumes(tiny_faces: Path, tmp_path: Path) -> None:
    base = apply_overrides(Config(), {
        "data.root": str(tiny_faces), "data.image_size": 32, "data.val_fraction": 0.25, "data.test_fraction": 0.25,
        "train.k": 2, "train.steps": 4, "train.eval_every": 2, "train.eval_pairs_per_fold": 20,
        "train.eval_train_identities": 4, "train.projector_samples": 0, "train.log_every": 1,
    })
    grid = {"batch": [4, 8], "embedding_dim": [16]}
    rows = run_sweep(base, grid, tmp_path / "sweep", progress=False, log=lambda *_: None)
    assert [r["run"] for r in rows] == ["batch=4_embedding_dim=16", "batch=8_embedding_dim=16"]
    assert all(0 <= r["accuracy"] <= 1 and r["steps"] == 4 for r in rows)
    table = (tmp_path / "sweep" / "results.md").read_text().splitlines()
    assert len(table) == 4 and "accuracy" in table[0]
    assert (tmp_path / "sweep" / "results.csv").read_text().count("\n") == 3
    assert all((tmp_path / "sweep" / f"{r['run']}.png").read_bytes()[:4] == b"\x89PNG" for r in rows)
    seen: list[str] = []
    again = run_sweep(base, grid, tmp_path / "sweep", progress=False, log=seen.append)
    assert again == rows and all("skipped" in line for line in seen)
    with pytest.raises(ConfigError, match="multiple of train.k"):
        run_sweep(base, {"batch": [5]}, tmp_path / "bad", progress=False, log=lambda *_: None)
