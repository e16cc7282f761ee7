"""Every command that reads images or configs, run over the bad-input corpus: a clear one-line error or a
listed skip, never a traceback, and the good files still processed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceprint.backbones import create_backbone
from faceprint.data.images import load_rgb
from faceprint.models import PretrainedInfo, save_pretrained
from tests.corpus import bad_files, write_corpus


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    torch.manual_seed(0)
    e = {**os.environ, "FACEPRINT_HOME": str(home)}
    old = os.environ.get("FACEPRINT_HOME")
    os.environ["FACEPRINT_HOME"] = str(home)
    save_pretrained(create_backbone("small_cnn", embedding_dim=16).state_dict(),
                    PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    if old is None:
        os.environ.pop("FACEPRINT_HOME")
    else:
        os.environ["FACEPRINT_HOME"] = old
    return e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "photos"
    write_corpus(root)
    return root


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceprint", *args], capture_output=True, text=True, timeout=300, env=env)


def test_the_exif_orientation_is_honoured(corpus: Path) -> None:
    assert load_rgb(corpus / "person0" / "rotated.jpg").size == (20, 40)  # stored 40×20, displayed upright


@pytest.mark.parametrize("command", ["embed", "index", "cluster", "classify", "align", "eval", "train"])
def test_commands_survive_the_corpus(command: str, corpus: Path, tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "out"
    args = {
        "embed": ["embed", str(corpus), "--weights", "tiny", "--out", str(out)],
        "index": ["index", "build", str(corpus), "--out", str(out), "--weights", "tiny", "--no-detect"],
        "cluster": ["cluster", str(corpus), "--out", str(out), "--weights", "tiny", "--no-detect"],
        "classify": ["classify", "fit", str(corpus), "--weights", "tiny", "--out", str(tmp_path / "c.safetensors")],
        "align": ["align", str(corpus), str(out)],
        "eval": ["eval", "--weights", "tiny", "--data", str(corpus), "--pairs-per-fold", "4"],
        "train": ["train", str(corpus), "--out", str(out), "--steps", "2", "--p", "2", "--k", "2", "--image-size", "32",
                  "--embedding-dim", "8", "--set", "train.eval_every=0", "--set", "data.val_fraction=0",
                  "--set", "data.test_fraction=0"],
    }[command]
    result = _run(env, *args)
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    assert result.returncode == 0, text  # bad files are skipped and the command goes on
    for name in ("zero-byte.jpg", "truncated.png", "text-named.jpg", "bomb.png"):  # and listed, by name
        assert name in text or (out.is_dir() and name in " ".join(p.read_text() for p in out.rglob("*.json"))), (name, text)


def test_embed_counts(corpus: Path, tmp_path: Path, env: dict[str, str]) -> None:
    result = _run(env, "embed", str(corpus), "--weights", "tiny", "--out", str(tmp_path / "e"))
    assert result.returncode == 0, result.stderr
    emb = np.load(tmp_path / "e.npy")
    good = 9 + 11  # good faces + awkward images (incl. animated GIF and rotated JPEG)
    assert emb.shape == (good, 16) and np.isfinite(emb).all()
    assert result.stderr.count("skipped") == len(bad_files())


def test_bad_configs_and_checkpoints(corpus: Path, tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nsteps = "many"\n')
    result = _run(env, "train", str(corpus), "--config", str(bad), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "train.steps" in result.stderr and "Traceback" not in result.stderr
    junk = tmp_path / "junk.toml"
    junk.write_text("[train\nsteps=")
    result = _run(env, "train", str(corpus), "--config", str(junk))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # a checkpoint with NaN weights is refused when loaded
    from faceprint.training.checkpoint import save_checkpoint

    model = create_backbone("small_cnn", embedding_dim=8)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    next(v for v in state.values() if v.is_floating_point()).fill_(float("nan"))
    save_checkpoint(tmp_path / "nan.pt", {"step": 1, "model": state, "arch": {"backbone": "small_cnn", "embedding_dim": 8,
                    "image_size": 32}, "optimizer": {}, "scheduler": {}, "rng": {}, "config": {}, "metrics": {}})
    result = _run(env, "embed", str(corpus), "--checkpoint", str(tmp_path / "nan.pt"))
    assert result.returncode == 2 and "NaN" in result.stderr and "Traceback" not in result.stderr


def test_read_only_output(corpus: Path, tmp_path: Path, env: dict[str, str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    # root ignores directory permissions; /proc refuses new files even to root
    target = Path("/proc/faceprint-read-only") if os.geteuid() == 0 else ro
    for args in (["embed", str(corpus), "--weights", "tiny", "--out", str(target / "e")],
                 ["index", "build", str(corpus), "--weights", "tiny", "--no-detect", "--out", str(target / "ix")],
                 ["align", str(corpus), str(target / "al")]):
        result = _run(env, *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
        assert result.stderr.count("error:") == 1
