"""One writer at a time across processes: an advisory ``flock`` on ``<index>/write.lock``.

A second writer waits (and says so once on stderr) and stops with one line after ``timeout`` seconds.
The lock is released by the kernel when its holder dies, so a killed writer never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["WriterBusyError", "writer_lock"]


class WriterBusyError(RuntimeError):
    """Another process held the index's writer lock for longer than the timeout."""


_held = threading.local()  # the index folders whose lock this thread holds: taking one again is a no-op


@contextlib.contextmanager
def writer_lock(root: Path, timeout: float = 60.0, poll: float = 0.05, quiet: bool = False) -> Iterator[None]:
    """Hold the index's cross-process writer lock for the duration of the block (``quiet``: no waiting line).

    If the folder is swapped (`index build --force`) while this waits, the new index's lock file is taken; between
    the swap's two renames (no folder at ``root``) it waits as for a busy lock. A thread that already holds the
    lock of ``root`` takes it again at once (a second ``flock`` on a new descriptor would wait for itself)."""
    key = os.path.realpath(root)  # one key for every spelling of the folder (a descriptor's /proc link too)
    held: set[str] = _held.__dict__.setdefault("roots", set())
    if key in held:
        yield
        return
    path = root / "write.lock"
    deadline, said, fd = time.monotonic() + timeout, False, -1
    try:
        while True:
            try:
                if fd < 0:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(fd, path):
                    break
                os.close(fd)  # swapped while we waited: closing drops the lock; the next round takes the new file's
                fd = -1
                continue
            except (BlockingIOError, FileNotFoundError):
                pass
            if time.monotonic() >= deadline:
                raise WriterBusyError(f"{root}: another process has been writing this index for {timeout:.0f} s; "
                                      "try again when it is done")
            if not said and not quiet:
                print(f"waiting: another process is writing {root}", file=sys.stderr, flush=True)
                said = True
            _pause(poll)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        if fd >= 0:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:  # mid-swap
        return False
    own = os.fstat(fd)
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


def _pause(seconds: float) -> None:
    """One wait of the polling loop (a seam: a test learns here that a writer really is waiting)."""
    time.sleep(seconds)
