"""Where and how a step runs: device, mixed precision (bf16 / fp16 with loss scaling), channels-last, compile."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from faceprint.config import ConfigError, TrainConfig

__all__ = ["Accel", "cpu_flags", "cpu_has_bf16"]

_AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):  # x86, Arm
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (x86: AVX512-BF16 or AMX-BF16; Arm: bf16); without it bf16 is
    emulated and slow. Where Linux reports no flags, oneDNN's own check decides."""
    flags = cpu_flags()
    if flags:
        return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()) and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported())


class _Autocast(nn.Module):
    """Runs the wrapped network under autocast and hands float32 embeddings to miners and losses."""

    def __init__(self, net: nn.Module, device_type: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.device_type, self.dtype = net, device_type, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.net(x)
        return out.float()


@dataclass
class Accel:
    """The execution settings of one training process."""

    device: torch.device
    amp: torch.dtype | None
    channels_last: bool
    compile: bool
    scaler: torch.amp.GradScaler | None = None
    note: str = ""  # what was changed from the config and why (shown once)

    @classmethod
    def from_config(cls, cfg: TrainConfig, local_rank: int = 0) -> Accel:
        if cfg.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be auto, cpu or cuda, got {cfg.device!r}")
        if cfg.amp not in _AMP:
            raise ConfigError(f"train.amp must be one of {', '.join(_AMP)}, got {cfg.amp!r}")
        cuda = torch.cuda.is_available()
        if cfg.device == "cuda" and not cuda:
            raise ConfigError("train.device=cuda but no CUDA device is available")
        device = torch.device(f"cuda:{local_rank}") if cuda and cfg.device != "cpu" else torch.device("cpu")
        if cfg.amp == "fp16" and device.type != "cuda":
            raise ConfigError("train.amp=fp16 needs a GPU; use bf16 on CPU")
        scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
        amp, note = _AMP[cfg.amp], ""
        if cfg.amp == "bf16" and device.type == "cpu" and not cpu_has_bf16():
            amp, note = None, "train.amp=bf16: this CPU has no AVX512-BF16 or AMX, so training runs in float32"
        return cls(device, amp, cfg.channels_last, cfg.compile, scaler, note)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move the model to the device and memory layout (in place)."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def wrap(self, net: nn.Module) -> nn.Module:
        """The callable the objective runs: autocast and torch.compile around the (DDP-wrapped) network."""
        if self.compile:
            net = torch.compile(net)  # type: ignore[assignment]
        if self.amp is not None:
            net = _Autocast(net, self.device.type, self.amp)
        return net

    def batch(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        non_blocking = self.device.type == "cuda"
        return (images.to(self.device, non_blocking=non_blocking).contiguous(memory_format=fmt),
                labels.to(self.device, non_blocking=non_blocking))

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
