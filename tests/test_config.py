"""Config files and overrides: unknown keys and wrong types are named; every shipped config loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceprint.config import Config, ConfigError, apply_overrides, config_to_dict, load_config
from faceprint.demo import demo_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_toml_and_json_round_trip(tmp_path: Path) -> None:
    cfg = apply_overrides(Config(), ["optim.lr=0.05", "model.backbone=resnet18", "data.max_images=30"])
    (tmp_path / "c.json").write_text(json.dumps(config_to_dict(cfg)))
    assert load_config(tmp_path / "c.json") == cfg
    (tmp_path / "c.toml").write_text('[optim]\nlr = 0.05\n[model]\nbackbone = "resnet18"\n[data]\nmax_images = 30\n')
    assert load_config(tmp_path / "c.toml") == cfg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[optim]\nlrr = 1.0\n", "unknown config key 'optim.lrr'"),
        ("[optimizer]\nlr = 1.0\n", "unknown config section 'optimizer'"),
        ('[optim]\nlr = "fast"\n', "'optim.lr' must be float, got str"),
        ("[train]\nsteps = 10.5\n", "'train.steps' must be int"),
        ("[data]\ncache = 1\n", "'data.cache' must be bool"),
        ("[train\n", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(tmp_path / "bad.toml")


def test_overrides_parse_values() -> None:
    cfg = apply_overrides(Config(), ["train.steps=7", "data.augment=false", "data.max_images=none", "data.root=/a b"])
    assert (cfg.train.steps, cfg.data.augment, cfg.data.max_images, cfg.data.root) == (7, False, None, "/a b")
    assert apply_overrides(cfg, {"optim.lr": 0.5, "train.p": None}).optim.lr == 0.5
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides(cfg, ["steps"])


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    from faceprint.sweep import expand_grid, load_sweep_config

    if "[sweep]" in path.read_text():
        cfg, grid = load_sweep_config(path)
        assert len(expand_grid(grid)) >= 2
    else:
        load_config(path)


def test_demo_config_file_matches_the_demo() -> None:
    assert load_config(CONFIGS / "demo.toml") == demo_config()
