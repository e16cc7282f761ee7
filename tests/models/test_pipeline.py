"""The detect → align → embed pipeline equals "align_folder, then embed the PNG crops" (the old LFW route),
and ``faceprint eval`` on raw images runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faceprint.align import MTCNN
from faceprint.bulk.align import align_folder
from faceprint.cli.main import app
from faceprint.evaluation import evaluate_verification
from faceprint.models import Embedder, FaceEmbedder, export_onnx
from faceprint.models.importers import import_onnx
from tests.models.nets import SensitiveNet

PEOPLE = ["Abdoulaye_Wade", "Abdullah", "Adam_Sandler"]


@pytest.fixture(scope="module")
def raw(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine raw LFW images of three people, plus an image with no face in it."""
    root = tmp_path_factory.mktemp("raw")
    for name in PEOPLE:
        (root / name).mkdir()
        for k in (1, 2, 3):
            shutil.copy(shared_data / f"lfw/images/{name}/{name}_{k:04d}.jpg", root / name)
    (root / "Blank").mkdir()
    Image.new("RGB", (250, 250), (128, 128, 128)).save(root / "Blank/Blank_0001.jpg")
    return root


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return SensitiveNet(16, 160)


def _oracle(model: torch.nn.Module, raw: Path, tmp: Path, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """davidsandberg's route: align_folder writes PNG crops (margin 32, 160 px, face nearest the centre); an image
    without one uses its central 60 %; then (x − 127.5)/128 by hand, plain and mirrored."""
    align_folder(raw, tmp, MTCNN(), image_size=160, margin=32, mode="margin", policy="center", batch_size=4)
    plain, mirrored = [], []
    for p in paths:
        png = (tmp / p.relative_to(raw)).with_suffix(".png")
        if png.is_file():
            crop = Image.open(png).convert("RGB")
        else:
            crop = Image.open(p).convert("RGB").crop((50, 50, 200, 200)).resize((160, 160), Image.BILINEAR)
        x = torch.from_numpy((np.asarray(crop, np.float32) - 127.5) / 128).permute(2, 0, 1)[None]
        with torch.no_grad():
            plain.append(model(x)[0].numpy())
            mirrored.append(model(x.flip(-1))[0].numpy())
    return np.stack(plain), np.stack(mirrored)


def test_pipeline_equals_align_folder_then_embed(raw: Path, model: torch.nn.Module, tmp_path: Path) -> None:
    paths = sorted(raw.rglob("*.jpg"))
    faces = FaceEmbedder(Embedder(model, 160))
    plain, mirrored, ok, failed = faces.embed_views(paths, batch_size=3)
    assert ok == paths and failed == []
    assert faces.no_face == [raw / "Blank/Blank_0001.jpg"]
    want_plain, want_mirrored = _oracle(model, raw, tmp_path / "aligned", paths)
    np.testing.assert_allclose(plain.numpy(), want_plain, atol=1e-5)
    np.testing.assert_allclose(mirrored.numpy(), want_mirrored, atol=1e-5)
    flipped, _, _ = faces.embed_paths(paths, batch_size=4, flip=True)
    both = np.concatenate([want_plain, want_mirrored], axis=1)
    np.testing.assert_allclose(flipped, both / np.linalg.norm(both, axis=1, keepdims=True), atol=1e-5)


def test_cli_eval_on_raw_images_detects_and_aligns(raw: Path, model: torch.nn.Module, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    pytest.importorskip("onnxruntime")  # the model goes in as an ONNX file with FaceNet's preprocessing and margin crop
    import_onnx(export_onnx(model, tmp_path / "m.onnx", 160), "tiny160", 160, mean=127.5, std=128.0, align="margin")
    a, b, c = PEOPLE
    pairs = tmp_path / "pairs.txt"  # two folds of 2 same + 2 different pairs; one pair touches the no-face image
    pairs.write_text(f"2 2\n{a} 1 2\n{b} 1 3\n{a} 1 {b} 2\n{c} 1 Blank 1\n{c} 2 3\n{a} 2 3\n{b} 2 {c} 3\n{a} 3 {c} 1\n")
    result = CliRunner().invoke(app, ["eval", "--weights", "tiny160", "--pairs", str(pairs), "--images", str(raw), "--flip",
                                      "--json", str(tmp_path / "m.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["no_face"] == 1 and got["n_pairs"] == 8
    # the oracle: the same pairs on align_folder crops, flip rule by hand
    index = {p: i for i, p in enumerate(sorted(raw.rglob("*.jpg")))}
    plain, mirrored = _oracle(model, raw, tmp_path / "aligned", list(index))
    both = np.concatenate([plain, mirrored], axis=1)
    both /= np.linalg.norm(both, axis=1, keepdims=True)
    lines = [ln.split() for ln in pairs.read_text().splitlines()[1:]]
    first = [raw / f[0] / f"{f[0]}_{int(f[1]):04d}.jpg" for f in lines]
    second = [raw / (f[0] if len(f) == 3 else f[2]) / f"{f[0] if len(f) == 3 else f[2]}_{int(f[-1]):04d}.jpg" for f in lines]
    same = np.array([len(f) == 3 for f in lines])
    want = evaluate_verification(both[[index[p] for p in first]], both[[index[p] for p in second]], same, n_folds=2)
    assert got["accuracy"] == pytest.approx(want.summary()["accuracy"]) and got["auc"] == pytest.approx(want.auc)
    # `embed` follows the same rule; --align none takes whole images instead
    for align in ("auto", "none"):
        out = CliRunner().invoke(app, ["embed", str(raw), "--weights", "tiny160", "--align", align, "--out",
                                       str(tmp_path / align)], catch_exceptions=False)
        assert out.exit_code == 0, out.output
    np.testing.assert_allclose(np.load(tmp_path / "auto.npy"), plain, atol=1e-5)
    whole = Embedder(model, 160).embed(list(index))
    np.testing.assert_allclose(np.load(tmp_path / "none.npy"), whole, atol=1e-5)
    assert np.abs(whole - np.load(tmp_path / "auto.npy")).max() > 0.05


def test_detection_follows_the_model_unless_told(model: torch.nn.Module) -> None:
    """A model for ready crops (align none) does not detect by default; margin and ArcFace models do."""
    assert FaceEmbedder(Embedder(model, 160, align="none")).mtcnn is None
    assert FaceEmbedder(Embedder(model, 160, align="margin")).detect
    assert FaceEmbedder(Embedder(model, 160, align="none"), detect=True).mode == "margin"
    assert FaceEmbedder(Embedder(model, 112, align="arcface112")).mode == "similarity"
    assert FaceEmbedder(Embedder(model, 160)).margin == 32 and FaceEmbedder(Embedder(model, 112)).margin == pytest.approx(22.4)


def test_cli_align_choice_wraps_the_model_as_asked(model: torch.nn.Module) -> None:
    """--align mtcnn detects even for a model trained on given images; auto follows the model; none never detects."""
    from faceprint.cli.common import path_embedder

    crops_model, face_model = Embedder(model, 160, align="none"), Embedder(model, 160, align="margin")
    assert path_embedder(crops_model, "auto") is crops_model and path_embedder(face_model, "none") is face_model
    assert path_embedder(crops_model, "mtcnn").detect and path_embedder(face_model, "auto").detect


def _two_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one: torch.nn.Module, two: torch.nn.Module,
                two_setup: tuple[int, float, str]) -> None:
    """``one`` (160 px, FaceNet preprocessing, margin crop) and ``two`` (size, std, alignment) as imported ONNX models."""
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    pytest.importorskip("onnxruntime")
    size, std, align = two_setup
    import_onnx(export_onnx(one, tmp_path / "a.onnx", 160), "one", 160, mean=127.5, std=128.0, align="margin")
    import_onnx(export_onnx(two, tmp_path / "b.onnx", size), "two", size, mean=127.5, std=std, align=align)


def test_cli_eval_fusion_of_two_models(raw: Path, model: torch.nn.Module, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--weights a+b: each model embeds its own way; the protocol runs on per-fold weighted distances."""
    from faceprint.evaluation.fusion import evaluate_fusion
    from faceprint.evaluation.verification import embedding_distance

    other = SensitiveNet(16, 160, seed=1)
    _two_models(tmp_path, monkeypatch, model, other, (160, 128.0, "none"))
    a, b, c = PEOPLE
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"2 2\n{a} 1 2\n{b} 1 3\n{a} 1 {b} 2\n{c} 1 {a} 3\n{c} 2 3\n{a} 2 3\n{b} 2 {c} 3\n{a} 3 {c} 1\n")
    result = CliRunner().invoke(app, ["eval", "--weights", "one+two", "--pairs", str(pairs), "--images", str(raw),
                                      "--json", str(tmp_path / "f.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    got = json.loads((tmp_path / "f.json").read_text())
    assert len(got["fusion_weights"]) == 2 and got["n_pairs"] == 8
    # oracle: model one on its MTCNN crops, model two on whole images, fused by hand
    index = {p: i for i, p in enumerate(sorted(raw.rglob("*.jpg")))}
    one = _oracle(model, raw, tmp_path / "aligned", list(index))[0]
    two = Embedder(other, 160).embed(list(index))
    lines = [ln.split() for ln in pairs.read_text().splitlines()[1:]]
    first = [index[raw / f[0] / f"{f[0]}_{int(f[1]):04d}.jpg"] for f in lines]
    second = [index[raw / f[-2 if len(f) == 4 else 0] / f"{f[-2 if len(f) == 4 else 0]}_{int(f[-1]):04d}.jpg"] for f in lines]
    same = np.array([len(f) == 3 for f in lines])
    want = evaluate_fusion([embedding_distance(e[first], e[second]) for e in (one, two)], same, n_folds=2)
    assert got["fusion_weights"] == want.fold_weights and got["accuracy"] == pytest.approx(want.verification.accuracy)


def test_fusion_works_where_a_model_is_named(raw: Path, model: torch.nn.Module, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`embed` and the index take --weights a:w+b:w: one detection, each model's own crop, rows √w-weighted."""
    from faceprint.models import Embedder as E
    from faceprint.models import FusedEmbedder
    from faceprint.search import build_index, open_index

    other = SensitiveNet(8, 112, seed=2)
    _two_models(tmp_path, monkeypatch, model, other, (112, 127.5, "arcface112"))
    paths = sorted(raw.rglob("*.jpg"))
    result = CliRunner().invoke(app, ["embed", str(raw), "--weights", "one:0.3+two:0.7", "--out", str(tmp_path / "f")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    got = np.load(tmp_path / "f.npy")
    one, _, _ = FaceEmbedder(E.from_pretrained("one")).embed_paths(paths)
    two, _, _ = FaceEmbedder(E.from_pretrained("two")).embed_paths(paths)
    np.testing.assert_allclose(got, np.hstack([np.sqrt(0.3) * one, np.sqrt(0.7) * two]), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # the index: build, find a face again, reopen with the same fusion (its fingerprint), refuse another weighting
    index, report = build_index(raw, tmp_path / "ix", {"weights": "one+two"})  # default weights: equal for this pair
    assert report.faces >= 9 and index.store.dim == 24 and index.store.meta["embedder"]["weights"] == "one:0.5+two:0.5"
    hit = index.query(paths[0], k=1)[0].matches[0]
    assert hit.face.path == str(paths[0]) and hit.distance < 1e-4
    # the stored face is the fusion of each model's own crop (as embed gave, reweighted to 0.5 / 0.5)
    equal = np.hstack([np.sqrt(0.5) * one, np.sqrt(0.5) * two])
    query = index.faces.embed_crops(index.faces.crops(index.faces.load(paths[0]), all_faces=False))[0]
    np.testing.assert_allclose(query, equal[0], atol=1e-5)
    index.store.close()
    open_index(tmp_path / "ix").store.close()
    from faceprint.search import IndexError_

    with pytest.raises(IndexError_, match="another model"):
        open_index(tmp_path / "ix", embedder=FusedEmbedder.from_spec("one:0.3+two:0.7"))


def test_fusion_weights_default_in_either_order_and_eval_refuses_given_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.models import fusion

    built = []
    monkeypatch.setattr(fusion.Embedder, "from_pretrained", classmethod(lambda cls, n, backend="torch": n))
    monkeypatch.setattr(fusion.FusedEmbedder, "__init__", lambda self, m, w: built.append((m, list(w))))
    fusion.FusedEmbedder.from_spec("casia-webface+dlib-resnet")
    fusion.FusedEmbedder.from_spec("dlib-resnet+casia-webface")
    assert built == [(["casia-webface", "dlib-resnet"], [0.1, 0.9]), (["dlib-resnet", "casia-webface"], [0.9, 0.1])]
    with pytest.raises(ValueError, match="every weight or none"):
        fusion.FusedEmbedder.from_spec("a:0.2+b")
    result = CliRunner().invoke(app, ["eval", "--weights", "a:0.2+b:0.8", "--pairs", "p.txt"])
    assert result.exit_code != 0 and "give none" in result.output


def test_fusion_on_whole_images_has_one_flip_layout(raw: Path, model: torch.nn.Module) -> None:
    """--align none: whole images, each resized per model; flip rows are [plain ‖ mirrored] of the fused rows."""
    from faceprint.data.images import load_rgb
    from faceprint.models import FusedEmbedder

    a, b = Embedder(model, 160), Embedder(SensitiveNet(8, 112, seed=3), 112)
    fused = FusedEmbedder([a, b], [1, 3])
    paths = sorted(raw.rglob("*.jpg"))[:4]
    plain = np.hstack([np.sqrt(0.25) * a.embed(paths), np.sqrt(0.75) * b.embed(paths)])
    rows, ok, failed = fused.embed_paths(paths)
    np.testing.assert_allclose(rows, plain, atol=1e-6)
    mirrored = [load_rgb(p).transpose(0) for p in paths]  # Image.FLIP_LEFT_RIGHT
    mir = np.hstack([np.sqrt(0.25) * a.embed(mirrored), np.sqrt(0.75) * b.embed(mirrored)])
    both = np.hstack([plain, mir]) / np.sqrt(2)
    np.testing.assert_allclose(fused.embed_paths(paths, flip=True)[0], both, atol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        FusedEmbedder([a, b], [float("nan"), 1])
