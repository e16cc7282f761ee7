"""Writing checkpoints: a dict with fixed keys, written atomically (reading them is ``faceprint.models.checkpoint``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from faceprint.io import atomic_write_bytes
from faceprint.models.checkpoint import (
    FORMAT, CheckpointError, find_checkpoints, latest_checkpoint, load_checkpoint, load_model,
)

__all__ = ["CheckpointError", "check_architecture", "find_checkpoints", "latest_checkpoint", "load_checkpoint",
           "load_model", "save_checkpoint"]

KEYS = ("format", "step", "model", "arch", "optimizer", "scheduler", "rng", "config", "metrics")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (must hold the fixed keys) to ``path`` via a temporary file and rename."""
    missing = [k for k in KEYS if k not in state and k != "format"]
    if missing:
        raise ValueError(f"checkpoint state lacks keys {missing}")
    path = Path(path)
    buf = io.BytesIO()  # serialize first: torch's zip writer reports a failed write as RuntimeError, not OSError
    torch.save(dict(state, format=FORMAT), buf)
    atomic_write_bytes(path, buf.getbuffer())
    return path


def check_architecture(state: dict[str, Any], backbone: str, embedding_dim: int, source: str = "checkpoint") -> None:
    """Refuse a checkpoint whose architecture differs from the requested one."""
    arch = state["arch"]
    if (arch["backbone"], arch["embedding_dim"]) != (backbone, embedding_dim):
        raise CheckpointError(
            f"{source} holds a {arch['backbone']} with {arch['embedding_dim']}-d embeddings, "
            f"but the config asks for {backbone} with {embedding_dim}-d; nothing was overwritten"
        )
