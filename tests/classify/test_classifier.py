"""Heads against hand-computed / sklearn answers, threshold calibration, open-set rejection, file round trip, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from faceprint.classify import UNKNOWN, ClassifierError, FaceClassifier, create_head
from faceprint.cli.main import app


def _clusters(n_classes: int, per_class: int, dim: int = 16, noise: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, per_class, 0) + noise * rng.normal(size=(n_classes * per_class, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = [f"id{c:02d}" for c in range(n_classes) for _ in range(per_class)]
    return x.astype(np.float32), labels, centres


def test_centroid_head_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    y = torch.tensor([0, 0, 1])
    head = create_head("centroid", 2).fit(x, y)
    c0 = torch.tensor([1.0, 1.0]) / 2**0.5
    torch.testing.assert_close(head.tensors["centroids"], torch.stack([c0, torch.tensor([0.6, 0.8])]))
    torch.testing.assert_close(head.scores(torch.tensor([[1.0, 0.0]])), torch.tensor([[2**-0.5, 0.6]]))


def test_softmax_head_matches_sklearn_logistic_regression() -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, labels, _ = _clusters(4, 10, dim=8, noise=0.6)
    y = np.array([int(lb[2:]) for lb in labels])
    head = create_head("softmax", 4)
    head.reg = 0.5 / (2 * len(x))  # sklearn: C=2 → penalty ½‖w‖²/C over the summed loss
    head.fit(torch.from_numpy(x), torch.from_numpy(y))
    ref = sklearn.LogisticRegression(C=2.0, tol=1e-10, max_iter=5000).fit(x, y)
    np.testing.assert_allclose(head.scores(torch.from_numpy(x)).numpy(), ref.predict_proba(x), atol=2e-3)


@pytest.mark.parametrize("method", ["centroid", "softmax", "svm"])
def test_open_set_known_accepted_unseen_rejected(method: str) -> None:
    x, labels, _ = _clusters(12, 12, noise=0.12)
    train = [i for i in range(len(x)) if i % 12 < 8 and labels[i] < "id09"]
    known_test = [i for i in range(len(x)) if i % 12 >= 8 and labels[i] < "id09"]
    unseen = [i for i in range(len(x)) if labels[i] >= "id09"]
    clf = FaceClassifier.fit(x[train], [labels[i] for i in train], method, accept=0.9)
    known = clf.predict(x[known_test])
    assert np.mean([p.label == labels[i] for p, i in zip(known, known_test)]) >= 0.8
    assert all(p.best == labels[i] for p, i in zip(known, known_test))  # closed set: all right
    rejected = np.mean([p.label == UNKNOWN for p in clf.predict(x[unseen])])
    assert rejected >= 0.9


def test_accept_fraction_controls_the_threshold() -> None:
    x, labels, _ = _clusters(6, 10, noise=0.4)
    loose = FaceClassifier.fit(x, labels, "centroid", accept=1.0)
    strict = FaceClassifier.fit(x, labels, "centroid", accept=0.5)
    assert strict.threshold > loose.threshold
    rate = np.mean([p.label != UNKNOWN for p in strict.predict(x)])
    assert 0.4 <= rate <= 0.9  # about half of the (training) faces pass


def test_save_load_roundtrip(tmp_path: Path) -> None:
    x, labels, _ = _clusters(5, 6)
    for method in ("centroid", "softmax", "svm"):
        clf = FaceClassifier.fit(x, labels, method, embedder={"weights": "w", "image_size": 160})
        loaded = FaceClassifier.load(clf.save(tmp_path / f"{method}.safetensors"))
        assert loaded.labels == clf.labels and loaded.threshold == clf.threshold and loaded.embedder == clf.embedder
        np.testing.assert_array_equal(loaded.scores(x), clf.scores(x))


def test_bad_inputs(tmp_path: Path) -> None:
    x, labels, _ = _clusters(3, 4)
    with pytest.raises(ClassifierError, match="N labels"):
        FaceClassifier.fit(x, labels[:-1])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ClassifierError, match="NaN"):
        FaceClassifier.fit(bad, labels)
    with pytest.raises(ClassifierError, match="at least 2"):
        FaceClassifier.fit(x[:4], labels[:4], "softmax")
    with pytest.raises(ValueError, match="unknown classifier method"):
        FaceClassifier.fit(x, labels, "knn")
    junk = tmp_path / "c.safetensors"
    junk.write_bytes(b"junk")
    with pytest.raises(ClassifierError, match="not a readable"):
        FaceClassifier.load(junk)


def test_cli_fit_and_predict(tiny_faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.backbones import create_backbone
    from faceprint.models import PretrainedInfo, save_pretrained

    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    model = create_backbone("small_cnn", embedding_dim=16)
    save_pretrained(model.state_dict(), PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    runner = CliRunner()
    out = tmp_path / "clf.safetensors"
    result = runner.invoke(app, ["classify", "fit", str(tiny_faces), "--weights", "tiny", "--out", str(out)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    image = sorted((tiny_faces / sorted(p.name for p in tiny_faces.iterdir())[0]).iterdir())[0]
    result = runner.invoke(app, ["classify", "predict", str(image), "--classifier", str(out),
                                 "--json", str(tmp_path / "p.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    pred = json.loads((tmp_path / "p.json").read_text())
    assert len(pred) == 1 and pred[0]["closest"] in {p.name for p in tiny_faces.iterdir()}
