"""Atomic file writes: write to a temporary file beside the target, fsync, then rename."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["AtomicWriteError", "atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


class AtomicWriteError(OSError):
    """A write failed; the previous file at the target path is untouched."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target`` atomically, on failure it is removed.

    ``durable=False`` skips the fsyncs (bulk jobs make a whole shard durable at once, see faceprint.bulk)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = "the disk is full or the file is too large" if exc.errno in (errno.ENOSPC, errno.EFBIG) else exc.strerror
        raise AtomicWriteError(exc.errno or 0, f"could not write {target}: {reason}; the previous file is intact") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(target: str | os.PathLike[str], mode: str, write: Callable[[IO[Any]], None]) -> None:
    with atomic_path(target) as tmp, open(tmp, mode) as fh:
        write(fh)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write ``data`` to ``target`` atomically."""
    _atomic_write(target, "wb", lambda fh: fh.write(data))


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``target`` atomically."""
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")
