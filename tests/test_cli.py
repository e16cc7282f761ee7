"""The CLI end to end on tiny data: synth → train → eval → embed, demo --json, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from faceprint.cli.main import app

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceprint", *args], capture_output=True, text=True, timeout=300)


def test_synth_train_eval_embed(tmp_path: Path) -> None:
    data = tmp_path / "faces"
    _ok(["synth", str(data), "--identities", "12", "--images-per-identity", "4", "--size", "32", "--seed", "1"])
    assert len(list(data.rglob("*.png"))) == 48
    run = tmp_path / "run"
    _ok(["train", str(data), "--out", str(run), "--steps", "4", "--p", "4", "--k", "2", "--image-size", "32",
         "--embedding-dim", "16", "--set", "train.eval_every=0", "--set", "data.val_fraction=0.25"])
    ckpt = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    assert ckpt.name == "step_0000004.pt"
    out = _ok(["eval", "--checkpoint", str(run), "--data", str(data), "--pairs-per-fold", "20",
               "--json", str(tmp_path / "m.json"), "--roc", str(tmp_path / "roc.png")])
    assert "accuracy" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"accuracy", "accuracy_std", "val", "far", "auc", "eer", "rank1", "map_at_r"} <= metrics.keys()
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    _ok(["eval", "--checkpoint", str(ckpt), "--split", "val", "--pairs-per-fold", "10", "--json", str(tmp_path / "v.json")])
    assert json.loads((tmp_path / "v.json").read_text())["n_images"] == 12  # 3 of 12 identities × 4 images
    _ok(["embed", str(data / "id_0000"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "emb")])
    emb = np.load(tmp_path / "emb.npy")
    rows = (tmp_path / "emb.csv").read_text().splitlines()
    assert emb.shape == (4, 16) and len(rows) == 5 and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_eval_lfw_pairs_with_pixels(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("Ann", "Bob", "Cid"):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(1, 4):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "img" / name / f"{name}_{i:04d}.jpg")
    lines = ["2\t3"] + ["Ann\t1\t2", "Bob\t1\t3", "Cid\t2\t3", "Ann\t1\tBob\t1", "Bob\t2\tCid\t1", "Cid\t3\tAnn\t3"] * 2
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    _ok(["eval", "--pixels", "--pairs", str(tmp_path / "pairs.txt"), "--images", str(tmp_path / "img"),
         "--image-size", "16", "--json", str(tmp_path / "m.json")])
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["embedding"] == "raw pixels" and m["n_pairs"] == 12 and m["rank1"] is None


def test_demo_json_small(tmp_path: Path) -> None:
    _ok(["demo", "--out", str(tmp_path / "demo"), "--identities", "30", "--images-per-identity", "5",
         "--steps", "6", "--json", str(tmp_path / "demo.json")])
    report = json.loads((tmp_path / "demo.json").read_text())
    for side in ("pixels", "model"):
        assert {"accuracy", "accuracy_std", "val", "far", "auc", "eer", "rank1"} <= report[side].keys()
    run = tmp_path / "demo" / "run"
    assert (run / "roc.png").exists() and (run / "metrics.json").exists() and (run / "config.json").exists()
    # A second call resumes the finished run instead of refusing or starting over.
    _ok(["demo", "--out", str(tmp_path / "demo"), "--identities", "30", "--images-per-identity", "5", "--steps", "6"])


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[optim]\nlrr = 1\n")
    cases = [
        (["train", str(tmp_path / "missing")], "does not exist"),
        (["train", "--config", str(tmp_path / "bad.toml")], "unknown config key 'optim.lrr'"),
        (["eval", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(tmp_path)], "does not exist"),
    ]
    for args, message in cases:
        r = _cli(*args)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr and "Traceback" not in r.stderr
    r = _cli("--debug", "train", "--config", str(tmp_path / "bad.toml"))
    assert "Traceback" in r.stderr
