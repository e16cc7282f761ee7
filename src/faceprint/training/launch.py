"""``faceprint train --nproc N``: run the same command under torchrun on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from faceprint.training.checkpoint import latest_checkpoint

__all__ = ["launch_local", "strip_nproc"]


def strip_nproc(args: list[str]) -> list[str]:
    """The train arguments without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def launch_local(nproc: int, train_args: list[str], run_dir: Path) -> None:
    """Start ``nproc`` DDP processes with torchrun (standalone rendezvous on 127.0.0.1) and wait.

    Each process gets ``cpu_count // nproc`` threads. A failed or killed process ends the whole job
    (torchrun stops the others); that raises TrainingError naming the last intact checkpoint.
    """
    from faceprint.training.trainer import TrainingError

    threads = max(1, (os.cpu_count() or 1) // nproc)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "faceprint.train", *strip_nproc(train_args)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    code = subprocess.run(cmd, env=env).returncode
    if code != 0:
        last = latest_checkpoint(run_dir)
        where = f"the last checkpoint {last} is intact" if last else "no checkpoint was written"
        raise TrainingError(f"a training process failed or was killed (torchrun exit code {code}); {where}; "
                            f"rerun with --resume (any --nproc) to continue")
