"""MTCNN weight files into the cache: from a file, a folder, or a facenet-pytorch wheel (sha256-checked)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from faceprint.home import cache_dir, file_sha256
from faceprint.io import atomic_write_bytes
from faceprint.models.known import WeightsError, known

__all__ = ["import_weights", "weights_status"]


def weights_status(name: str) -> dict[str, str]:
    """For each file of ``name``: ``ok``, ``missing`` or ``bad checksum``, in the cache."""
    out = {}
    for fname, digest in known(name).files.items():
        path = cache_dir() / name / fname
        out[fname] = "missing" if not path.is_file() else ("ok" if file_sha256(path) == digest else "bad checksum")
    return out


def _from_wheel(path: Path, wanted: dict[str, str]) -> dict[str, bytes]:
    """MTCNN files inside a facenet-pytorch wheel (``facenet_pytorch/data/*.pt``)."""
    found = {}
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            fname = member.rsplit("/", 1)[-1]
            if member.startswith("facenet_pytorch/data/") and fname in wanted:
                found[fname] = zf.read(member)
    if not found:
        raise WeightsError(f"{path}: no facenet_pytorch/data/{{pnet,rnet,onet}}.pt inside this wheel")
    return found


def import_weights(source: str | Path, name: str = "mtcnn") -> list[Path]:
    """Copy weight files (a single file, a folder of them, or a facenet-pytorch wheel) into the cache.

    Every file must match its known sha256; a mismatch writes nothing.
    """
    source = Path(source)
    wanted = known(name).files
    if not wanted:
        raise WeightsError(f"{name} is a model, not a set of files: use `faceprint weights import-tf/import-pt/fetch`")
    if not source.exists():
        raise WeightsError(f"{source} does not exist")
    if source.suffix == ".whl":
        files = _from_wheel(source, wanted)
    elif source.is_dir():
        files = {f: (source / f).read_bytes() for f in wanted if (source / f).is_file()}
    else:
        files = {source.name: source.read_bytes()}
    for fname, data in files.items():
        if fname not in wanted:
            raise WeightsError(f"{fname} is not a file of {name} (expected {', '.join(wanted)})")
        digest = hashlib.sha256(data).hexdigest()
        if digest != wanted[fname]:
            raise WeightsError(f"{fname}: sha256 {digest[:12]}… does not match the known {name} weights")
    written = []
    for fname, data in files.items():
        target = cache_dir() / name / fname
        atomic_write_bytes(target, data)
        written.append(target)
    return written
