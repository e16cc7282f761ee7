"""Fault-injection helpers shared by tests/test_faults.py and benchmarks/faults.py: kill a command at a random
moment, then check that nothing was lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from faceprint.training.checkpoint import find_checkpoints, load_checkpoint


def faceprint(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, "-m", "faceprint", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})}, **kw)


def train_args(data: Path, out: Path, steps: int) -> list[str]:
    return ["train", str(data), "--out", str(out), "--steps", str(steps), "--p", "4", "--k", "2", "--image-size", "32",
            "--embedding-dim", "16", "--set", "train.eval_every=0", "--set", "data.val_fraction=0",
            "--set", "data.test_fraction=0", "--set", "train.checkpoint_every=1", "--set", "train.threads=1"]


def kill_when(proc: subprocess.Popen, ready, delay: float) -> bool:  # type: ignore[no-untyped-def]
    """SIGKILL ``proc`` ``delay`` seconds after ``ready()`` turns true; False if it ended first."""
    deadline = time.time() + 120
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def kill_and_resume(data: Path, out: Path, steps: int, seed: int) -> tuple[bool, dict[str, torch.Tensor]]:
    """Train, SIGKILL at a random moment after the first checkpoint, resume to the end; (killed?, final weights)."""
    rng = random.Random(seed)
    proc = faceprint(*train_args(data, out, steps))
    killed = kill_when(proc, lambda: bool(find_checkpoints(out)), rng.uniform(0.0, 0.8))
    resume = faceprint(*train_args(data, out, steps), "--resume")
    log, _ = resume.communicate(timeout=300)
    if resume.returncode != 0:
        raise RuntimeError(log)
    return killed, load_checkpoint(out)["model"]


def kill_at_checkpoint(data: Path, out: Path, steps: int, at: int) -> dict[str, torch.Tensor]:
    """Train with a fault point that SIGKILLs right after checkpoint ``at`` is written, check the kill landed there,
    resume to the end; the final weights."""
    proc = faceprint(*train_args(data, out, steps), env={"FACEPRINT_FAULT": f"train.checkpoint@{at}"})
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, log)  # killed, not finished
    assert load_checkpoint(out)["step"] == at  # ... exactly after checkpoint `at`, mid-run
    # a real resume writes checkpoints at+1..steps only; one that started over would reach this fault point and die
    resume = faceprint(*train_args(data, out, steps), "--resume",
                       env={"FACEPRINT_FAULT": f"train.checkpoint@{steps + 1 - at}"})
    log, _ = resume.communicate(timeout=300)
    if resume.returncode != 0:
        raise RuntimeError(log)
    return load_checkpoint(out)["model"]


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def with_file_size_limit(nbytes: int, *cmd: str) -> list[str]:
    """``cmd`` run with writes past ``nbytes`` failing with EFBIG ("File too large") like a full disk.

    The limit is set by a small launcher that then execs ``cmd``, not by a ``preexec_fn``: forking this test process
    to run Python in the child can abort once gRPC (Ray, Milvus tests) is loaded here (its fork handlers)."""
    launcher = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                f"resource.setrlimit(resource.RLIMIT_FSIZE, ({nbytes}, {nbytes})); os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", launcher, *cmd]
