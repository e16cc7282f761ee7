"""Checkpoints: a dict with fixed keys, written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from faceprint.backbones import EmbeddingNet, create_backbone
from faceprint.io import atomic_write_bytes

__all__ = ["CheckpointError", "check_architecture", "find_checkpoints", "latest_checkpoint", "load_checkpoint",
           "load_model", "save_checkpoint"]

FORMAT = "faceprint-checkpoint-v1"
KEYS = ("format", "step", "model", "arch", "optimizer", "scheduler", "rng", "config", "metrics")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the requested model."""


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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without executing code (``weights_only=True``)."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint in {path}")
        path = found
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable faceprint checkpoint ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a faceprint checkpoint (no '{FORMAT}' marker)")
    return state


def check_architecture(state: dict[str, Any], backbone: str, embedding_dim: int, source: str = "checkpoint") -> None:
    """Refuse a checkpoint whose architecture differs from the requested one."""
    arch = state["arch"]
    if (arch["backbone"], arch["embedding_dim"]) != (backbone, embedding_dim):
        raise CheckpointError(
            f"{source} holds a {arch['backbone']} with {arch['embedding_dim']}-d embeddings, "
            f"but the config asks for {backbone} with {embedding_dim}-d; nothing was overwritten"
        )


def load_model(path: str | Path) -> tuple[EmbeddingNet, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint (file or run folder), in eval mode, with its arch info."""
    state = load_checkpoint(path)
    arch = state["arch"]
    model = create_backbone(arch["backbone"], embedding_dim=arch["embedding_dim"])
    bad = [k for k, v in state["model"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: weights contain NaN/inf ({bad[0]}{' and others' if len(bad) > 1 else ''})")
    model.load_state_dict(state["model"], strict=True)
    return model.eval(), arch


def find_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files of a run folder, oldest step first."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(folder.glob("step_*.pt")) if folder.is_dir() else []


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run that loads; a damaged newest file falls back to the one before."""
    for path in reversed(find_checkpoints(run_dir)):
        try:
            load_checkpoint(path)
            return path
        except CheckpointError:
            continue
    return None
