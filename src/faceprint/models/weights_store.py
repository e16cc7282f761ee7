"""The weights cache's storage: where a model lives (``<cache>/<name>/``), its ``model.json`` (``PretrainedInfo``) and
the atomic writes of both. The importers write here; ``models/cache.py`` resolves and loads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from faceprint.home import cache_dir
from faceprint.io import atomic_path, atomic_write_json
from faceprint.models.known import WeightsError

__all__ = ["ALIGNMENTS", "INFO_FILE", "MODEL_FILE", "ONNX_FILE", "PretrainedInfo", "complete", "pretrained_dir", "read_info",
           "save_info", "save_pretrained"]

MODEL_FILE, ONNX_FILE, INFO_FILE = "model.safetensors", "model.onnx", "model.json"
ALIGNMENTS = ("margin", "arcface112", "dlib150", "none")


@dataclass(frozen=True)
class PretrainedInfo:
    """What a stored model is and how to feed it."""

    name: str
    backbone: str = "inception_resnet_v1"
    embedding_dim: int = 512
    image_size: int = 160
    preprocessing: dict[str, Any] = field(
        default_factory=lambda: {"channels": "RGB", "standardization": "fixed", "mean": 127.5, "scale": 1 / 128})
    num_classes: int | None = None
    source: str = ""
    source_sha256: str = ""
    notes: str = ""
    format: str = "safetensors"  # or "onnx": an imported ONNX graph run by onnxruntime
    align: str = "margin"  # how faces are cut for it: MTCNN box + margin, ArcFace 5-point template, or none

    @property
    def mean(self) -> float | tuple[float, float, float]:
        mean = self.preprocessing.get("mean", 127.5)
        return tuple(float(m) for m in mean) if isinstance(mean, (list, tuple)) else float(mean)  # type: ignore[return-value]

    @property
    def scale(self) -> float:
        return float(self.preprocessing.get("scale", 1 / 128))

    @property
    def bgr(self) -> bool:
        return str(self.preprocessing.get("channels", "RGB")).upper() == "BGR"


def pretrained_dir(name: str) -> Path:
    """Where ``name`` lives in the cache."""
    if not name or "/" in name or name.startswith("."):
        raise WeightsError(f"bad weights name {name!r}")
    return cache_dir() / name


def save_pretrained(state_dict: dict[str, torch.Tensor], info: PretrainedInfo, folder: Path | None = None) -> Path:
    """Write weights and their JSON atomically (weights first, so a JSON always has its weights)."""
    folder = folder or pretrained_dir(info.name)
    with atomic_path(folder / MODEL_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp))
    return save_info(folder, info)


def save_info(folder: Path, info: PretrainedInfo) -> Path:
    """Write ``model.json`` atomically (after the model file, so a JSON always has its model)."""
    atomic_write_json(folder / INFO_FILE, asdict(info))
    return folder


def complete(folder: Path) -> bool:
    return (folder / INFO_FILE).is_file() and ((folder / MODEL_FILE).is_file() or (folder / ONNX_FILE).is_file())


def read_info(folder: Path) -> PretrainedInfo:
    """The ``model.json`` of a cache folder."""
    try:
        return PretrainedInfo(**json.loads((folder / INFO_FILE).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise WeightsError(f"{folder}: damaged pretrained weights ({exc}); import them again") from exc
