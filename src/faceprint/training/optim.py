"""Optimizers and learning-rate schedules from an ``OptimConfig``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from faceprint.config import ConfigError, OptimConfig

__all__ = ["create_optimizer", "create_scheduler", "lr_factor"]


def create_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam, AdamW, SGD (Nesterov when momentum > 0) or Adagrad (davidsandberg's default)."""
    name = cfg.optimizer.lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay, initial_accumulator_value=0.1)
    raise ConfigError(f"unknown optim.optimizer {cfg.optimizer!r}; choose adam, adamw, sgd or adagrad")


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    """Multiplier of the base learning rate at ``step`` (linear warmup, then the schedule)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    s = step - cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        span = max(total - cfg.warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(s, span) / span))
    if cfg.schedule == "step":  # staircase, as davidsandberg's and TF's ExponentialDecay(staircase=True)
        return cfg.gamma ** (s // max(cfg.step_size, 1))
    if cfg.schedule == "exponential":  # smooth decay: gamma every step_size steps
        return cfg.gamma ** (s / max(cfg.step_size, 1))
    raise ConfigError(f"unknown optim.schedule {cfg.schedule!r}; choose constant, cosine, step or exponential")


def create_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping once per training step."""
    lr_factor(0, total_steps, cfg)  # validate the name early
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, cfg))
