"""Clustering methods against scipy / scikit-learn / hand-made cases; metrics against scikit-learn; the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from faceprint.cluster import agglomerative, chinese_whispers, cluster, cluster_metrics, dbscan, nmi, pairwise_prf
from faceprint.cli.main import app


def _blobs(k: int = 6, per: int = 8, dim: int = 16, noise: float = 0.08, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, per, 0) + noise * rng.normal(size=(k * per, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(k), per)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return pairwise_prf(a, b) == (1.0, 1.0, 1.0) and len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("method", ["agglomerative", "dbscan", "chinese_whispers"])
def test_separated_identities_are_recovered(method: str) -> None:
    x, truth = _blobs()
    assert _same_partition(cluster(x, 0.5, method), truth)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), dim=st.integers(2, 8), t=st.floats(0.05, 3.0), seed=st.integers(0, 10_000))
def test_agglomerative_equals_scipy_average_linkage(n: int, dim: int, t: float, seed: int) -> None:
    hierarchy = pytest.importorskip("scipy.cluster.hierarchy")
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = distance.pdist(x, "sqeuclidean")
    if np.any(np.abs(np.sort(d)[:, None] - t) < 1e-9):  # a merge height exactly at the threshold
        return
    ref = hierarchy.fcluster(hierarchy.linkage(d, "average"), t=t, criterion="distance")
    # fcluster cuts at height <= t, we merge while < t: same unless a height equals t (excluded above)
    ours = agglomerative(x, t)
    assert _same_partition(ours, ref)


def test_dbscan_equals_sklearn() -> None:
    sk = pytest.importorskip("sklearn.cluster")
    x, _ = _blobs(noise=0.3, seed=3)
    for eps in (0.3, 0.6, 1.0):
        ref = sk.DBSCAN(eps=np.sqrt(eps), min_samples=3).fit_predict(x)
        ref[ref == -1] = ref.max() + 1 + np.arange((ref == -1).sum())
        assert _same_partition(dbscan(x, eps, min_samples=3), ref)


def test_chinese_whispers_by_hand() -> None:
    # two triangles joined by nothing, plus an isolated point
    x = np.array([[1, 0], [0.99, 0.14], [0.98, -0.2], [-1, 0], [-0.99, 0.14], [-0.98, -0.2], [0, 1.0]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = chinese_whispers(x, 0.2)
    assert _same_partition(labels, np.array([0, 0, 0, 1, 1, 1, 2]))


def test_metrics_by_hand_and_against_sklearn() -> None:
    truth = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])
    # pairs in the same predicted cluster: 1 + 6 = 7; of those same identity: (0,1) and (3,4) → 2
    # true same pairs: 3 + 1 = 4 → precision 2/7, recall 2/4
    p, r, f = pairwise_prf(truth, pred)
    assert (p, r) == pytest.approx((2 / 7, 0.5))
    assert f == pytest.approx(2 * p * r / (p + r))
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 5, 50), rng.integers(0, 7, 50)
        assert nmi(a, b) == pytest.approx(metrics.normalized_mutual_info_score(a, b), abs=1e-10)
    assert cluster_metrics(truth, truth)["f1"] == 1.0 and nmi(truth, truth) == pytest.approx(1.0)


def test_bad_arguments() -> None:
    x, _ = _blobs(2, 2)
    with pytest.raises(ValueError, match="unknown clustering"):
        cluster(x, 1.0, "kmeans")
    with pytest.raises(ValueError, match="positive"):
        cluster(x, float("nan"))
    assert len(cluster(np.zeros((0, 4)), 1.0)) == 0


def test_cli_cluster_report(tiny_faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from faceprint.backbones import create_backbone
    from faceprint.models import PretrainedInfo, save_pretrained

    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    save_pretrained(create_backbone("small_cnn", embedding_dim=16).state_dict(),
                    PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    (tmp_path / "photos").mkdir()
    for d in sorted(tiny_faces.iterdir())[:5]:
        (tmp_path / "photos" / d.name).symlink_to(d, target_is_directory=True)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["cluster", str(tmp_path / "photos"), "--out", str(out), "--weights", "tiny",
                                 "--no-detect", "--threshold", "0.5"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faces"] == 30 and summary["problems"][0]["issue"] == "unreadable"
    rows = (out / "clusters.csv").read_text().splitlines()
    assert len(rows) == 31
    page = (out / "index.html").read_text()
    assert page.count("<section>") == summary["clusters"] and "thumbs/0.jpg" in page
    assert len(list((out / "clusters").glob("*.html"))) == summary["clusters"]
