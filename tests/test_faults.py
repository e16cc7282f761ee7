"""Fault injection (the fast part; benchmarks/faults.py runs more trials): SIGKILL training and resume to the same
weights, SIGKILL during checkpoint writes and alignment, a write that fails like a full disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from faceprint.training.checkpoint import find_checkpoints, load_checkpoint
from tests.faults import faceprint, kill_at_checkpoint, kill_when, same_weights, train_args, with_file_size_limit


@pytest.fixture(scope="module")
def reference(tiny_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = faceprint(*train_args(tiny_faces, out, 12))
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    return load_checkpoint(out)["model"]


@pytest.mark.parametrize("at", [3, 7, 11])
def test_sigkill_then_resume_gives_the_uninterrupted_weights(at: int, tiny_faces: Path, tmp_path: Path,
                                                              reference: dict) -> None:
    """A deterministic fault point kills training right after checkpoint ``at`` (checked: SIGKILL, newest step
    ``at``); the resumed run ends with bitwise the uninterrupted weights."""
    weights = kill_at_checkpoint(tiny_faces, tmp_path / "run", 12, at)
    assert same_weights(weights, reference)


def test_sigkill_during_checkpoint_writes_never_leaves_a_bad_checkpoint(tmp_path: Path) -> None:
    code = f"""
import torch, itertools
from faceprint.training.checkpoint import save_checkpoint
big = {{"w": torch.randn(4_000_000)}}
for step in itertools.count(1):
    save_checkpoint(r"{tmp_path}/checkpoints/step_%07d.pt" % step, {{"step": step, "model": big, "arch": {{}}, "optimizer": {{}},
                    "scheduler": {{}}, "rng": {{}}, "config": {{}}, "metrics": {{}}}})
"""
    for delay in (0.3, 0.7, 1.1):
        proc = subprocess.Popen([sys.executable, "-c", code])
        assert kill_when(proc, lambda: len(find_checkpoints(tmp_path)) >= 1, delay)
    files = find_checkpoints(tmp_path)
    assert files and all(load_checkpoint(f)["step"] >= 1 for f in files)  # every visible checkpoint is whole


def test_sigkill_during_align_then_rerun_finishes_cleanly(tmp_path: Path) -> None:
    from faceprint.data.synth import write_synthetic_dataset

    src = write_synthetic_dataset(tmp_path / "src", identities=30, images_per_identity=4, size=64, seed=0)
    dst = tmp_path / "dst"
    proc = faceprint("align", str(src), str(dst), "--image-size", "48")
    assert kill_when(proc, lambda: dst.exists() and any(dst.rglob("*.png")), 0.5)
    rerun = faceprint("align", str(src), str(dst), "--image-size", "48")
    log, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, log
    outputs = sorted(p for p in dst.rglob("*") if p.is_file() and p.suffix == ".png")
    names = [p.relative_to(dst).with_suffix("") for p in outputs]
    assert len(names) == len(set(names))  # no duplicates
    assert not [p for p in dst.rglob("*") if p.is_file() and p.suffix not in (".png", ".json", ".csv")]  # no temp files
    from PIL import Image

    for p in outputs:
        with Image.open(p) as im:
            im.load()  # no partial files


def test_disk_full_is_a_clear_error_and_the_old_checkpoint_survives(tiny_faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = faceprint(*train_args(tiny_faces, out, 2))
    log, _ = first.communicate(timeout=300)
    assert first.returncode == 0, log
    size = max(p.stat().st_size for p in find_checkpoints(out))
    proc = subprocess.run(with_file_size_limit(size // 2, sys.executable, "-m", "faceprint", *train_args(tiny_faces, out, 4),
                                               "--resume"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and ("too large" in proc.stderr.lower() or "space" in proc.stderr.lower()), proc.stderr
    assert load_checkpoint(out)["step"] == 2  # the previous checkpoint is intact and still the newest
