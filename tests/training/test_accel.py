"""Execution options on CPU: bf16 autocast trains, channels-last gives the same step, bad combinations are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.config import Config, ConfigError, apply_overrides
from faceprint.training import Trainer, load_checkpoint


def _cfg(data: Path, out: Path, *extra: str) -> Config:
    return apply_overrides(Config(), [
        f"data.root={data}", f"train.out={out}", "data.image_size=32", "data.val_fraction=0.25", "data.test_fraction=0",
        "data.augment=false", "train.p=4", "train.k=2", "train.steps=3", "train.eval_every=3", "train.eval_pairs_per_fold=10",
        "model.embedding_dim=16", "optim.optimizer=sgd", "optim.lr=0.05", *extra])


def test_bf16_autocast_trains_and_validates(tiny_faces: Path, tmp_path: Path) -> None:
    trainer = Trainer(_cfg(tiny_faces, tmp_path / "bf16", "train.amp=bf16", "train.log_every=1"), progress=False)
    result = trainer.run()
    assert result.step == 3 and result.history and 0 <= result.history[-1]["accuracy"] <= 1
    plain = Trainer(_cfg(tiny_faces, tmp_path / "fp32", "train.log_every=1"), progress=False).run()
    # same weights and batch at step 1: the bf16 forward gives nearly the float32 loss
    assert abs(result.loss_history[0][1] - plain.loss_history[0][1]) < 0.05
    x = torch.randn(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert trainer.model(x).dtype == torch.bfloat16
    assert trainer.net(x).dtype == torch.float32  # miners and losses get float32


def test_channels_last_matches_the_default_layout(tiny_faces: Path, tmp_path: Path) -> None:
    Trainer(_cfg(tiny_faces, tmp_path / "cl", "train.channels_last=true"), progress=False).run()
    Trainer(_cfg(tiny_faces, tmp_path / "nchw"), progress=False).run()
    a, b = load_checkpoint(tmp_path / "cl")["model"], load_checkpoint(tmp_path / "nchw")["model"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point()) < 1e-3


@pytest.mark.parametrize("override, message", [
    ("train.amp=fp16", "needs a GPU"), ("train.amp=int8", "train.amp"), ("train.device=tpu", "train.device"),
])
def test_refused_settings(tiny_faces: Path, tmp_path: Path, override: str, message: str) -> None:
    if override == "train.amp=fp16" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match=message):
        Trainer(_cfg(tiny_faces, tmp_path / "x", override), progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine")
def test_cuda_requested_without_a_gpu(tiny_faces: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        Trainer(_cfg(tiny_faces, tmp_path / "x", "train.device=cuda"), progress=False)


@pytest.mark.slow
def test_compile_trains(tiny_faces: Path, tmp_path: Path) -> None:
    result = Trainer(_cfg(tiny_faces, tmp_path / "c", "train.compile=true", "train.eval_every=0"), progress=False).run()
    assert result.step == 3


def test_bf16_falls_back_to_float32_on_a_cpu_without_it(tiny_faces: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.training import accel

    monkeypatch.setattr(accel, "cpu_flags", lambda: {"avx2", "fma"})
    trainer = Trainer(_cfg(tiny_faces, tmp_path / "old", "train.amp=bf16"), progress=False)
    assert trainer.accel.amp is None and "no AVX512-BF16" in trainer.accel.note
    monkeypatch.setattr(accel, "cpu_flags", lambda: {"avx512_bf16"})
    assert Trainer(_cfg(tiny_faces, tmp_path / "new", "train.amp=bf16"), progress=False).accel.amp == torch.bfloat16


def test_bf16_resumes_bitwise(tiny_faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.training import accel, train

    monkeypatch.setattr(accel, "cpu_flags", lambda: {"avx512_bf16"})  # bf16 on, whatever this CPU is
    extra = ("train.amp=bf16", "train.steps=6", "train.checkpoint_every=2", "train.eval_every=0")
    assert Trainer(_cfg(tiny_faces, tmp_path / "probe", *extra), progress=False).accel.amp == torch.bfloat16
    train(_cfg(tiny_faces, tmp_path / "full", *extra), progress=False)
    train(_cfg(tiny_faces, tmp_path / "half", *extra), stop_after=3, progress=False)
    train(_cfg(tiny_faces, tmp_path / "half", *extra), resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "full")["model"], load_checkpoint(tmp_path / "half")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
