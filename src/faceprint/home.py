"""Where faceprint keeps its own files: ``$FACEPRINT_HOME`` (default ``~/.cache/faceprint``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["cache_dir", "file_sha256", "home_dir"]


def home_dir() -> Path:
    """``$FACEPRINT_HOME``, or ``~/.cache/faceprint``."""
    return Path(os.environ.get("FACEPRINT_HOME") or Path.home() / ".cache" / "faceprint")


def cache_dir() -> Path:
    """The one weights cache: ``$FACEPRINT_HOME/weights`` (MTCNN files and embedding models alike)."""
    return home_dir() / "weights"


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks (weight files are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
