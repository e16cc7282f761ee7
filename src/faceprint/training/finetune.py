"""Fine-tuning: start from pretrained or trained weights and freeze parts of the network."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from faceprint.backbones import EmbeddingNet
from faceprint.config import ConfigError, ModelConfig

__all__ = ["FREEZE_CHOICES", "apply_train_mode", "freeze_parameters", "frozen_modules", "load_init_weights", "trainable"]

FREEZE_CHOICES = ("none", "stem", "all_but_last")
# Inception-ResNet-v1: the stem is everything before the first residual stage; "last" is block8 + the head.
_IRV1_STEM = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b")
_IRV1_LAST = ("block8", "avgpool_1a", "dropout", "last_linear", "last_bn", "logits")


def load_init_weights(model: EmbeddingNet, cfg: ModelConfig) -> str:
    """Load ``cfg.init`` (a pretrained name/folder, or a training checkpoint/run folder) into ``model``.

    The architecture must match: same backbone, same embedding size. Returns a one-line description.
    """
    from faceprint.models.cache import load_pretrained
    from faceprint.training.checkpoint import load_checkpoint

    path = Path(cfg.init)
    if path.suffix == ".pt" or (path.is_dir() and (path / "checkpoints").is_dir()):
        state = load_checkpoint(path)
        backbone, dim, weights = state["arch"]["backbone"], state["arch"]["embedding_dim"], state["model"]
    else:
        pretrained, info = load_pretrained(cfg.init)
        backbone, dim, weights = info.backbone, info.embedding_dim, pretrained.state_dict()
    if backbone != cfg.backbone or dim != cfg.embedding_dim:
        raise ConfigError(f"model.init {cfg.init!r} is {backbone} with {dim}-d embeddings; set model.backbone={backbone} "
                          f"and model.embedding_dim={dim} (now {cfg.backbone}, {cfg.embedding_dim})")
    weights = {k: v for k, v in weights.items() if not k.startswith("logits.")}  # a classifier layer is not reused
    model.load_state_dict(weights, strict=True)
    return f"initialized from {cfg.init} ({backbone}, {dim}-d)"


def frozen_modules(model: nn.Module, cfg: ModelConfig) -> list[nn.Module]:
    """Top-level modules that ``cfg.freeze`` keeps fixed."""
    if cfg.freeze not in FREEZE_CHOICES:
        raise ConfigError(f"model.freeze must be one of {', '.join(FREEZE_CHOICES)}, got {cfg.freeze!r}")
    if cfg.freeze == "none":
        return []
    if cfg.backbone != "inception_resnet_v1":
        raise ConfigError(f"model.freeze={cfg.freeze} is defined for inception_resnet_v1, not {cfg.backbone}")
    names = [n for n, _ in model.named_children()]
    keep = _IRV1_STEM if cfg.freeze == "stem" else [n for n in names if n not in _IRV1_LAST]
    return [getattr(model, n) for n in names if n in keep]


def apply_train_mode(model: nn.Module, frozen: list[nn.Module], freeze_bn: bool) -> None:
    """Training mode, except frozen modules (and every batch norm with ``freeze_bn``) stay in eval mode.

    Imported davidsandberg weights fold batch norm into the convolutions: their statistics must stay
    fixed, or the first training step renormalizes every layer with batch statistics.
    """
    model.train()
    for module in frozen:
        module.eval()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def freeze_parameters(frozen: list[nn.Module]) -> int:
    """Turn off gradients of the frozen modules; returns how many parameters were frozen."""
    count = 0
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
            count += p.numel()
    return count


def trainable(model: nn.Module) -> list[torch.nn.Parameter]:
    """Parameters that still need gradients."""
    return [p for p in model.parameters() if p.requires_grad]
