"""Helpers for the benchmark scripts: median timing and peak memory of a call in a forked child."""

from __future__ import annotations

import os
import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(fn: Callable[[], Any], repeats: int = 5, budget_s: float = 20.0) -> float:
    """Median wall time of ``fn`` in ms after one warm-up call (fewer repeats if it is slow)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    n = max(1, min(repeats, int(budget_s / max(first, 1e-6))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def fixed_mmap_threshold(nbytes: int = 1 << 20) -> None:
    """Make glibc return freed blocks over 1 MiB to the OS at once.

    glibc's default raises its mmap threshold after the first large free, so a loop of large
    temporaries grows the heap and RSS reports blocks that are free; with a fixed threshold the
    RSS high-water mark measures what the code really holds (batch-all at 4096: 0.9 GB vs 6.3 GB).
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # M_MMAP_THRESHOLD
    except OSError:
        pass


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def in_child(fn: Callable[[], Any], fixed_malloc: bool = True) -> tuple[Any, float]:
    """Run ``fn`` in a forked child; return (its result, its peak extra resident memory in MiB).

    The child resets its RSS high-water mark, so the figure is what the call itself added. With
    ``fixed_malloc`` freed blocks go back to the OS at once (true peak, slower allocation); time in a
    child without it.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        if fixed_malloc:
            fixed_mmap_threshold()
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            base = _status_kb("VmRSS:")
            out = fn()
            payload = (out, (_status_kb("VmHWM:") - base) / 1024, None)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload = (None, 0.0, repr(exc))
        with os.fdopen(w, "wb") as fh:
            pickle.dump(payload, fh)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    out, peak, err = pickle.loads(data)
    if err:
        raise RuntimeError(err)
    return out, peak


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index_dir: Any, *extra: str) -> tuple[Any, int]:
    """`faceprint serve INDEX` on a free port, returned once /healthz answers: (process, port)."""
    import subprocess
    import sys

    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "faceprint", "serve", str(index_dir), "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 401):  # 401: up, closed
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"faceprint serve {index_dir} did not answer /healthz")
