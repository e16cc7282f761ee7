"""Training configuration: frozen dataclasses loaded from TOML/JSON, with ``section.key=value`` overrides."""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Config", "ConfigError", "DataConfig", "LossConfig", "ModelConfig", "OptimConfig", "TrainConfig",
           "apply_overrides", "config_from_dict", "config_to_dict", "load_config", "parse_value"]


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


@dataclass(frozen=True)
class DataConfig:
    root: str = ""
    image_size: int = 64
    load_size: int | None = None  # decode/cache size before random crops (default: image_size)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    min_images: int = 2
    max_images: int | None = None
    split_seed: int = 0
    cache: bool = True  # keep decoded images in memory (small datasets)
    workers: int = 0  # data-loader processes; each competes with torch threads on a small machine
    pin_memory: bool = False  # page-locked batches for faster host-to-GPU copies (GPU only)
    augment: bool = True


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "small_cnn"
    embedding_dim: int = 64
    init: str = ""  # fine-tune from: pretrained weights name/folder, or a checkpoint / run folder
    freeze: str = "none"  # none, stem, all_but_last (inception_resnet_v1)
    freeze_bn: bool | None = None  # keep batch-norm statistics fixed (default: when init is set)


@dataclass(frozen=True)
class LossConfig:
    loss: str = "triplet"  # triplet, adaptive
    margin: float = 0.2
    distance: str = "squared_l2"
    miner: str = "batch_hard"  # batch_all, batch_hard, random, semihard, semihard_vgg, distance_weighted, triplet_margin
    type_of_triplets: str = "all"  # for miner = triplet_margin: all, hard, semihard, easy
    semihard_fallback: str = "drop"  # for miner = semihard: drop, hardest, largest
    reduction: str = "mean"  # mean, mean_nonzero, sum
    soft: bool = False
    adaptive_lambda: float = 1.0
    match_norm: str = "l2"  # l2, sq_l2
    match_members: str = "pn"  # pn, apn
    collapse_threshold: float = 1e-3
    xbm_size: int = 0  # cross-batch memory: also mine against this many recent (detached) embeddings


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"  # adam, adamw, sgd, adagrad
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"  # constant, cosine, step, exponential
    warmup_steps: int = 0
    step_size: int = 1000
    gamma: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    out: str = "runs/run"
    mode: str = "online"  # online (P×K batches, mining) or offline (pre-drawn random triplets, 3 passes)
    p: int = 16
    k: int = 4
    steps: int = 1000
    seed: int = 0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    eval_every: int = 200
    log_every: int = 10
    eval_pairs_per_fold: int = 600
    eval_train_identities: int = 0  # also measure accuracy on this many training identities (train vs dev curves)
    projector_samples: int = 200
    threads: int | None = None
    device: str = "auto"  # auto (cuda when available), cpu, cuda
    amp: str = "none"  # none, bf16 (CPU or GPU), fp16 (GPU, with loss scaling)
    channels_last: bool = False  # NHWC memory layout for convolutions
    compile: bool = False  # torch.compile the network (the first steps take minutes on CPU)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``tp`` (int, float, str, bool, X | None); ints widen to float."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool) or tp is not bool and isinstance(value, bool) or not isinstance(value, tp):
        raise ConfigError(f"config key '{name}' must be {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def _section(cls: type, name: str, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config section '{name}' must be a table, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key '{name}.{key}' (known: {', '.join(sorted(known))})")
    return cls(**{k: _coerce(f"{name}.{k}", hints[k], v) for k, v in values.items()})


def config_from_dict(d: dict[str, Any]) -> Config:
    """Build a validated Config; unknown sections or keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(Config)
    for sec in d:
        if sec not in hints:
            raise ConfigError(f"unknown config section '{sec}' (known: {', '.join(hints)})")
    return Config(**{sec: _section(hints[sec], sec, vals) for sec, vals in d.items()})


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict (None values dropped so it round-trips through TOML too)."""
    return {sec: {k: v for k, v in vals.items() if v is not None} for sec, vals in dataclasses.asdict(cfg).items()}


def load_config(path: str | Path) -> Config:
    """Read a ``.toml`` or ``.json`` config file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        d = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    return config_from_dict(d)


def parse_value(raw: str) -> Any:
    """A command-line value: JSON scalars (numbers, true/false), none/null, else the string itself."""
    if raw.lower() in ("none", "null"):
        return None
    try:
        return json.loads(raw.lower() if raw.lower() in ("true", "false") else raw)
    except json.JSONDecodeError:
        return raw


def apply_overrides(cfg: Config, overrides: list[str] | dict[str, Any]) -> Config:
    """Apply ``section.key=value`` strings (or a {dotted key: value} dict) over ``cfg``."""
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    d = config_to_dict(cfg)
    for key, value in items:
        if value is None:
            continue
        sec, _, name = key.partition(".")
        if not name:
            raise ConfigError(f"override '{key}' must be section.key")
        d.setdefault(sec, {})[name] = value
    return config_from_dict(d)


def _split(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep:
        raise ConfigError(f"override '{item}' must look like section.key=value")
    return key.strip(), parse_value(raw.strip())
