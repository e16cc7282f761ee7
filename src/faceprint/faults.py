"""Deterministic fault points for fault-injection tests: with ``FACEPRINT_FAULT=name`` (or ``name@n``) in the
environment, the process SIGKILLs itself the first (n-th) time it passes ``fault_point(name)``; a kill that
lands exactly where the test says, instead of after a guessed delay. Without the variable it does nothing."""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["fault_point"]

_PASSES: Counter[str] = Counter()  # per-process pass counts; only read when FACEPRINT_FAULT is set


def fault_point(name: str) -> None:
    """Kill this process here if ``$FACEPRINT_FAULT`` names this point (and this is its n-th pass)."""
    spec = os.environ.get("FACEPRINT_FAULT")
    if not spec:
        return
    wanted, _, nth = spec.partition("@")
    if wanted != name:
        return
    _PASSES[name] += 1
    if _PASSES[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
