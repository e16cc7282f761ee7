"""A photo collection is not an identity dataset: `index build` on a photo tree indexes every face with no
identity, unless asked; an identity tree (root/<identity>/<image>, face-sized) keeps its identities."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from faceprint.search import FaceStore, build_index, gallery_images
from tests.conftest import SHARED


def _tree(root: Path, layout: dict[str, tuple[int, int]]) -> Path:
    """Files at the given relative paths, each a plain image of the given size."""
    for rel, size in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (120, 90, 60)).save(root / rel)
    return root


def test_the_layout_decides_unless_told(tmp_path: Path) -> None:
    ids = _tree(tmp_path / "ids", {f"{p}/{k}.png": (64, 64) for p in ("ann", "bob", "cy") for k in range(2)})
    assert {i for _, i in gallery_images(ids)} == {"ann", "bob", "cy"}
    assert {i for _, i in gallery_images(ids, identities=False)} == {None}
    albums = _tree(tmp_path / "albums", {"2024/summer/a.png": (64, 64), "2024/summer/b.png": (64, 64),
                                         "2023/winter/c.png": (64, 64)})
    assert {i for _, i in gallery_images(albums)} == {None}  # two levels deep: albums, not people
    one = _tree(tmp_path / "one", {"lfw/a.png": (64, 64), "lfw/b.png": (64, 64)})
    assert {i for _, i in gallery_images(one)} == {None}  # a single folder is an album
    assert {i for _, i in gallery_images(one, identities=True)} == {"lfw"}
    camera = _tree(tmp_path / "camera", {"paris/a.jpg": (4000, 3000), "rome/b.jpg": (4000, 3000)})
    assert {i for _, i in gallery_images(camera)} == {None}  # camera-sized photos in trip folders
    loose = _tree(tmp_path / "loose", {"a.png": (64, 64), "ann/b.png": (64, 64), "bob/c.png": (64, 64)})
    assert {i for _, i in gallery_images(loose)} == {None}  # photos beside the folders: not a dataset


def test_index_build_of_a_photo_tree_indexes_every_face_with_no_identity(tmp_path: Path, tiny_weights: str) -> None:
    group = SHARED / "samples" / "multiface.jpg"
    if not group.is_file():
        pytest.skip("needs ../shared/data/samples")
    photos = tmp_path / "photos"
    (photos / "2024" / "summer").mkdir(parents=True)
    (photos / "lfw").mkdir()
    shutil.copy(group, photos / "2024" / "summer" / "group.jpg")
    shutil.copy(group, photos / "lfw" / "group-again.jpg")
    index, report = build_index(photos, tmp_path / "ix", {"weights": tiny_weights}, detect=True)
    index.close()
    store = FaceStore(tmp_path / "ix")
    faces = store.faces(range(1, len(store) + 1))
    assert report.faces == 12 and len(store) == 12  # every face of both photos (6 each), not the largest one
    assert {f.identity for f in faces.values()} == {None}  # no identity from "2024", "summer" or "lfw"
    store.close()
    from faceprint.cli.main import app

    r = CliRunner().invoke(app, ["index", "build", str(photos), "--out", str(tmp_path / "ix2"), "--weights", tiny_weights,
                                 "--detect", "--identities-from-folders"])
    assert r.exit_code == 0, r.output
    store = FaceStore(tmp_path / "ix2")
    assert len(store) == 2 and dict(store.identities()) == {"2024": 1, "lfw": 1}  # asked: the top folder, largest face
    store.close()
