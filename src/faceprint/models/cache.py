"""Embedding models in the weights cache: ``<cache>/<name>/model.safetensors`` (or ``model.onnx``) + ``model.json``.

Loading never downloads: a name that is not in the cache is converted from an installed package that
carries it (``faceprint[casia]``), or the error says exactly what to run.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from faceprint.backbones import EmbeddingNet, create_backbone
from faceprint.home import cache_dir
from faceprint.models.known import KNOWN_WEIGHTS, WeightsError
from faceprint.models.weights_store import (ALIGNMENTS, INFO_FILE, MODEL_FILE, ONNX_FILE, PretrainedInfo, complete,
                                            pretrained_dir, read_info, save_info, save_pretrained)

__all__ = ["ALIGNMENTS", "INFO_FILE", "MODEL_FILE", "ONNX_FILE", "PretrainedInfo", "list_pretrained", "load_pretrained", "read_info",
           "save_info", "pretrained_dir", "resolve_pretrained", "save_pretrained"]


def resolve_pretrained(name_or_path: str | Path) -> Path:
    """The cache folder of ``name_or_path``; a known model carried by an installed package is converted first."""
    path = Path(name_or_path)
    if path.is_dir() and (path / INFO_FILE).is_file():
        return path
    if path.suffix in (".safetensors", ".onnx") and path.is_file():
        return path.parent
    folder = pretrained_dir(str(name_or_path))
    if complete(folder):
        return folder
    from faceprint.models.packages import import_from_package

    if import_from_package(str(name_or_path)) is not None:
        return folder
    entry = KNOWN_WEIGHTS.get(str(name_or_path))
    how = entry.how_to_get if entry else ("import it with `faceprint weights import-tf`, `import-pt`, `import-onnx` "
                                          "or `faceprint weights fetch URL`")
    raise WeightsError(f"pretrained weights {str(name_or_path)!r} are not in {cache_dir()}: {how}")


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
