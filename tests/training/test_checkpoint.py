"""Checkpoints: atomic writes survive a full disk, damaged files are refused, architectures checked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from faceprint.backbones import create_backbone
from faceprint.training.checkpoint import (
    CheckpointError, check_architecture, latest_checkpoint, load_checkpoint, load_model, save_checkpoint,
)


def _state(step: int = 1, backbone: str = "small_cnn", dim: int = 16) -> dict:
    model = create_backbone(backbone, embedding_dim=dim)
    return {"step": step, "model": model.state_dict(), "arch": {"backbone": backbone, "embedding_dim": dim, "image_size": 32},
            "optimizer": {}, "scheduler": {}, "rng": {"torch": torch.get_rng_state()}, "config": {}, "metrics": {}}


def test_round_trip_and_model_rebuild(tmp_path: Path) -> None:
    state = _state()
    save_checkpoint(tmp_path / "c.pt", state)
    model, arch = load_model(tmp_path / "c.pt")
    assert arch["backbone"] == "small_cnn" and not model.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), state["model"].values()))
    assert not list(tmp_path.glob(".*.tmp"))


def test_damaged_and_foreign_files_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", _state())
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "trunc.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a faceprint checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_code_is_not_executed(tmp_path: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (Path.write_text, (tmp_path / "pwned", "x"))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_nan_weights_refused(tmp_path: Path) -> None:
    state = _state()
    state["model"]["head.linear.weight"][0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", state)
    with pytest.raises(CheckpointError, match="NaN"):
        load_model(tmp_path / "nan.pt")


def test_architecture_mismatch_names_both() -> None:
    with pytest.raises(CheckpointError, match="small_cnn with 16-d.*resnet18 with 128-d"):
        check_architecture(_state(), "resnet18", 128)


def test_latest_falls_back_when_newest_is_damaged(tmp_path: Path) -> None:
    ck = tmp_path / "checkpoints"
    save_checkpoint(ck / "step_0000010.pt", _state(10))
    (ck / "step_0000020.pt").write_bytes(b"garbage")
    assert latest_checkpoint(tmp_path) == ck / "step_0000010.pt"
    assert load_checkpoint(tmp_path)["step"] == 10


def test_disk_full_keeps_previous_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "c.pt"
    save_checkpoint(target, _state(1))
    before = target.read_bytes()
    script = textwrap.dedent(f"""
        import resource, signal, sys, torch
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.training.test_checkpoint import _state
        from faceprint.io import AtomicWriteError
        from faceprint.training.checkpoint import save_checkpoint
        state = _state(2)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            save_checkpoint({str(target)!r}, state)
        except AtomicWriteError as e:
            print("ERR", e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "ERR" in out.stdout and "disk is full or the file is too large" in out.stdout, out.stderr
    assert target.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
