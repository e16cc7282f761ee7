"""Reading checkpoints written by ``faceprint train``: a fixed-key dict read with ``weights_only=True``; the model rebuilt."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from faceprint.backbones import EmbeddingNet, create_backbone

__all__ = ["FORMAT", "CheckpointError", "find_checkpoints", "latest_checkpoint", "load_checkpoint", "load_model"]

FORMAT = "faceprint-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the requested model."""


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
