"""Embedding models in the weights cache: ``<cache>/<name>/model.safetensors`` (or ``model.onnx``) + ``model.json``.

Loading never downloads: a name that is not in the cache is converted from an installed package that
carries it (``faceprint[casia]``), or the error says exactly what to run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from faceprint.backbones import EmbeddingNet, create_backbone
from faceprint.io import atomic_path, atomic_write_json
from faceprint.home import cache_dir
from faceprint.models.known import KNOWN_WEIGHTS, WeightsError

__all__ = ["INFO_FILE", "MODEL_FILE", "ONNX_FILE", "PretrainedInfo", "list_pretrained", "load_pretrained", "read_info", "save_info",
           "pretrained_dir", "resolve_pretrained", "save_pretrained"]

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


def resolve_pretrained(name_or_path: str | Path) -> Path:
    """The cache folder of ``name_or_path``; a known model carried by an installed package is converted first."""
    path = Path(name_or_path)
    if path.is_dir() and (path / INFO_FILE).is_file():
        return path
    if path.suffix in (".safetensors", ".onnx") and path.is_file():
        return path.parent
    folder = pretrained_dir(str(name_or_path))
    if _complete(folder):
        return folder
    from faceprint.models.packages import import_from_package

    if import_from_package(str(name_or_path)) is not None:
        return folder
    entry = KNOWN_WEIGHTS.get(str(name_or_path))
    how = entry.how_to_get if entry else ("import it with `faceprint weights import-tf`, `import-pt`, `import-onnx` "
                                          "or `faceprint weights fetch URL`")
    raise WeightsError(f"pretrained weights {str(name_or_path)!r} are not in {cache_dir()}: {how}")


def _complete(folder: Path) -> bool:
    return (folder / INFO_FILE).is_file() and ((folder / MODEL_FILE).is_file() or (folder / ONNX_FILE).is_file())


def read_info(folder: Path) -> PretrainedInfo:
    """The ``model.json`` of a cache folder."""
    try:
        return PretrainedInfo(**json.loads((folder / INFO_FILE).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise WeightsError(f"{folder}: damaged pretrained weights ({exc}); import them again") from exc


def load_pretrained(name_or_path: str | Path) -> tuple[EmbeddingNet, PretrainedInfo]:
    """The stored PyTorch model (eval mode) and its info, by cache name or folder path."""
    folder = resolve_pretrained(name_or_path)
    info = read_info(folder)
    if info.format != "safetensors":
        raise WeightsError(f"{info.name} is an ONNX model: load it with Embedder.from_pretrained (onnxruntime)")
    try:
        state = load_file(str(folder / MODEL_FILE))
    except (OSError, ValueError, TypeError, SafetensorError) as exc:
        raise WeightsError(f"{folder}: damaged pretrained weights ({exc}); import them again") from exc
    extra = {"num_classes": info.num_classes} if info.num_classes else {}
    model = create_backbone(info.backbone, embedding_dim=info.embedding_dim, **extra)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{folder}: weights do not match {info.backbone}: {str(exc)[:300]}") from exc
    return model.eval(), info


def list_pretrained() -> list[PretrainedInfo]:
    """Pretrained models found in the cache."""
    root = cache_dir()
    found = []
    for info_path in sorted(root.glob(f"*/{INFO_FILE}")) if root.is_dir() else []:
        try:
            found.append(read_info(info_path.parent))
        except WeightsError:  # a damaged entry is left out of the listing
            continue
    return found
