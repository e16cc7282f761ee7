"""Named pretrained weights: a local cache (``$FACEPRINT_HOME``), sha256 checks, imports from files or wheels.

Nothing is ever downloaded: weights come with the package (MTCNN) or are imported from a file the
user has (for example ``pip download --no-deps facenet-pytorch==2.6.0`` gives a wheel to import from).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from faceprint.align.nets import WEIGHT_SHA256
from faceprint.io import atomic_write_bytes

__all__ = ["KNOWN_WEIGHTS", "WeightsError", "WeightsInfo", "cache_dir", "file_sha256", "import_weights", "weights_status"]


class WeightsError(ValueError):
    """Weights are missing, unknown or do not match their checksum; the message says what to do."""


@dataclass(frozen=True)
class WeightsInfo:
    """A known set of weight files and how a user obtains them."""

    name: str
    files: dict[str, str]  # file name → sha256
    description: str
    how_to_get: str


KNOWN_WEIGHTS = {
    "mtcnn": WeightsInfo(
        "mtcnn", {f"{n}.pt": h for n, h in WEIGHT_SHA256.items()},
        "MTCNN P/R/O-Net (facenet-pytorch 2.6.0, MIT); shipped inside faceprint",
        "ships with faceprint; or `pip download --no-deps facenet-pytorch==2.6.0` and "
        "`faceprint weights import facenet_pytorch-2.6.0-py3-none-any.whl`",
    ),
}


def cache_dir() -> Path:
    """``$FACEPRINT_HOME/weights`` (default ``~/.cache/faceprint/weights``)."""
    home = os.environ.get("FACEPRINT_HOME") or Path.home() / ".cache" / "faceprint"
    return Path(home) / "weights"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks (weight files are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_status(name: str) -> dict[str, str]:
    """For each file of ``name``: ``ok``, ``missing`` or ``bad checksum``, in the cache."""
    info = KNOWN_WEIGHTS.get(name)
    if info is None:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(sorted(KNOWN_WEIGHTS))}")
    out = {}
    for fname, digest in info.files.items():
        path = cache_dir() / name / fname
        out[fname] = "missing" if not path.is_file() else ("ok" if file_sha256(path) == digest else "bad checksum")
    return out


def _from_wheel(path: Path) -> dict[str, bytes]:
    """MTCNN files inside a facenet-pytorch wheel (``facenet_pytorch/data/*.pt``)."""
    found = {}
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            fname = member.rsplit("/", 1)[-1]
            if member.startswith("facenet_pytorch/data/") and fname in KNOWN_WEIGHTS["mtcnn"].files:
                found[fname] = zf.read(member)
    if not found:
        raise WeightsError(f"{path}: no facenet_pytorch/data/{{pnet,rnet,onet}}.pt inside this wheel")
    return found


def import_weights(source: str | Path, name: str = "mtcnn") -> list[Path]:
    """Copy weight files (a single file, a folder of them, or a facenet-pytorch wheel) into the cache.

    Every file must match its known sha256; a mismatch writes nothing.
    """
    source = Path(source)
    info = KNOWN_WEIGHTS.get(name)
    if info is None:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(sorted(KNOWN_WEIGHTS))}")
    if not source.exists():
        raise WeightsError(f"{source} does not exist")
    if source.suffix == ".whl":
        files = _from_wheel(source)
    elif source.is_dir():
        files = {f: (source / f).read_bytes() for f in info.files if (source / f).is_file()}
    else:
        files = {source.name: source.read_bytes()}
    for fname, data in files.items():
        if fname not in info.files:
            raise WeightsError(f"{fname} is not a file of {name} (expected {', '.join(info.files)})")
        if _sha256(data) != info.files[fname]:
            raise WeightsError(f"{fname}: sha256 {_sha256(data)[:12]}… does not match the known {name} weights")
    written = []
    for fname, data in files.items():
        target = cache_dir() / name / fname
        atomic_write_bytes(target, data)
        written.append(target)
    return written
