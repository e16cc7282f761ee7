"""Every command that takes paths, the way people type them: relative paths from another working directory and a
symlinked folder, with ``--workers 1`` and ``2``, each equal to the run with absolute, resolved paths."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint.cli.main import app
from faceprint.search import FaceStore
from tests.search.conftest import tiny_weights  # noqa: F401 - a fixture

SPELLINGS = [("relative", 1), ("relative", 2), ("symlink", 1), ("symlink", 2)]


@pytest.fixture()
def photos(tiny_faces: Path, tmp_path: Path) -> Path:
    """A folder named like people name theirs (``2024/summer``), holding the tiny identities."""
    root = tmp_path / "data" / "2024" / "summer"
    shutil.copytree(tiny_faces, root)
    for extra in sorted(root.iterdir())[6:]:
        shutil.rmtree(extra)
    return root


def _spell(photos: Path, tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The photo folder as the command gets it: relative to another working directory, or through a symlink."""
    elsewhere = tmp_path / "elsewhere" / "cwd"
    elsewhere.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(elsewhere)
    if how == "relative":
        return Path(os.path.relpath(photos, elsewhere))
    link = elsewhere / "linked"
    if not link.exists():
        link.symlink_to(photos, target_is_directory=True)
    return Path("linked")


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _faces(root: Path) -> tuple[list[tuple[str, str | None]], np.ndarray]:
    store = FaceStore(root)
    ids, vecs, _ = store.all_vectors()
    faces = store.faces(ids.tolist())
    out = [(faces[i].path, faces[i].identity) for i in ids.tolist()]
    store.close()
    return out, vecs


@pytest.mark.parametrize(("how", "workers"), SPELLINGS)
def test_index_build(how: str, workers: int, photos: Path, tmp_path: Path, tiny_weights: str,  # noqa: F811
                     monkeypatch: pytest.MonkeyPatch) -> None:
    _run(["index", "build", str(photos), "--out", str(tmp_path / "ref"), "--weights", tiny_weights, "--no-detect"])
    given = _spell(photos, tmp_path, how, monkeypatch)
    _run(["index", "build", str(given), "--out", "ix", "--weights", tiny_weights, "--no-detect",
          "--workers", str(workers), "--shard-size", "8"])
    (got, v), (want, w) = _faces(Path("ix")), _faces(tmp_path / "ref")
    assert got == want and len(got) == 36 and all(p.startswith(str(photos)) for p, _ in got)
    np.testing.assert_allclose(v, w, atol=1e-5)


@pytest.mark.parametrize(("how", "workers"), SPELLINGS)
def test_library_add(how: str, workers: int, photos: Path, tmp_path: Path, tiny_weights: str,  # noqa: F811
                     monkeypatch: pytest.MonkeyPatch) -> None:
    _run(["library", "add", str(tmp_path / "ref"), str(photos), "--weights", tiny_weights, "--no-detect"])
    given = _spell(photos, tmp_path, how, monkeypatch)
    args = ["library", "add", "lib", str(given), "--weights", tiny_weights, "--no-detect", "--workers", str(workers),
            "--shard-size", "8"]
    _run(args)
    (got, v), (want, w) = _faces(Path("lib")), _faces(tmp_path / "ref")
    assert got == want and len(got) == 36
    np.testing.assert_allclose(v, w, atol=1e-5)
    rerun = CliRunner().invoke(app, args, catch_exceptions=False)  # unchanged photos: nothing to do
    assert rerun.exit_code == 0 and _faces(Path("lib"))[0] == want, rerun.output


@pytest.mark.parametrize(("how", "workers"), SPELLINGS)
def test_cluster(how: str, workers: int, photos: Path, tmp_path: Path, tiny_weights: str,  # noqa: F811
                 monkeypatch: pytest.MonkeyPatch) -> None:
    _run(["cluster", str(photos), "--out", str(tmp_path / "ref"), "--weights", tiny_weights, "--no-detect"])
    given = _spell(photos, tmp_path, how, monkeypatch)
    _run(["cluster", str(given), "--out", "people", "--weights", tiny_weights, "--no-detect", "--workers", str(workers)])
    rows = lambda p: list(csv.reader(open(p / "clusters.csv")))  # noqa: E731, SIM115
    assert rows(Path("people")) == rows(tmp_path / "ref") and len(rows(Path("people"))) == 37


@pytest.mark.parametrize(("how", "workers"), SPELLINGS)
def test_embed(how: str, workers: int, photos: Path, tmp_path: Path, tiny_weights: str,  # noqa: F811
               monkeypatch: pytest.MonkeyPatch) -> None:
    _run(["embed", str(photos), "--out", str(tmp_path / "ref"), "--weights", tiny_weights, "--align", "none"])
    given = _spell(photos, tmp_path, how, monkeypatch)
    _run(["embed", str(given), "--out", "emb", "--weights", tiny_weights, "--align", "none", "--workers", str(workers)])
    assert Path("emb.csv").read_text() == (tmp_path / "ref.csv").read_text()
    np.testing.assert_allclose(np.load("emb.npy"), np.load(tmp_path / "ref.npy"), atol=1e-5)


@pytest.fixture()
def faces_photos(tmp_path: Path) -> Path:
    """Twelve LFW photos (real faces, for MTCNN) under ``2024/summer``."""
    lfw = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "images"
    photos = sorted(lfw.rglob("*.jpg"))[:12] if lfw.is_dir() else []
    if not photos:
        pytest.skip("needs ../shared/data/lfw")
    root = tmp_path / "data" / "2024" / "summer"
    for photo in photos:
        (root / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, root / photo.parent.name / photo.name)
    return root


@pytest.mark.parametrize(("how", "workers"), SPELLINGS)
def test_align(how: str, workers: int, faces_photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(["align", str(faces_photos), str(tmp_path / "ref"), "--image-size", "64"])
    given = _spell(faces_photos, tmp_path, how, monkeypatch)
    _run(["align", str(given), "crops", "--image-size", "64", "--workers", str(workers)])
    crops = lambda p: {c.relative_to(p).as_posix(): c.read_bytes() for c in sorted(p.rglob("*.png"))}  # noqa: E731
    got, want = crops(Path("crops")), crops(tmp_path / "ref")
    assert got == want and len(got) >= 10
