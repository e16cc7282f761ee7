"""`index build` and `library add` on the bulk runner: the same index and library as one process, and a killed
worker resumed without a missing or duplicated face."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.bulk import Runner
from faceprint.search.store import IndexError_
from faceprint.people import open_library
from faceprint.search import build_index, gallery_images
from tests.search.conftest import tiny_weights  # noqa: F401 - a fixture

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def faces_of(index) -> list[tuple[str, str | None, list[float] | None]]:  # type: ignore[no-untyped-def]
    ids, vecs, _ = index.store.all_vectors()
    faces = index.store.faces(ids.tolist())
    return [(faces[i].path, faces[i].identity, faces[i].box) for i in ids.tolist()], vecs


@pytest.fixture()
def gallery(tiny_faces: Path, tmp_path: Path) -> Path:
    """The tiny identities plus what listings disagree on: a hidden folder, a folder reached by a symlink, names that
    sort differently as strings and as paths (``ann`` / ``ann-lee``), two unreadable files and a loose photo."""
    root = tmp_path / "gallery"
    shutil.copytree(tiny_faces, root)
    one = (tiny_faces / "id_0000" / "0000.png").read_bytes()
    (root / "broken.png").write_bytes(b"not an image")
    (root / "id_0001" / "cut.png").write_bytes(one[:40])
    (root / "loose.png").write_bytes(one)
    for name in ("ann", "ann-lee", ".hidden"):
        (root / name).mkdir()
        shutil.copy(tiny_faces / "id_0002" / "0001.png", root / name / "a.png")
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(tiny_faces / "id_0003" / "0002.png", tmp_path / "elsewhere" / "b.png")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return root


def test_index_build_with_workers_equals_one_process(gallery: Path, tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    one, r1 = build_index(gallery, tmp_path / "one", {"weights": tiny_weights}, detect=False)
    two, r2 = build_index(gallery, tmp_path / "two", {"weights": tiny_weights}, detect=False, runner=Runner(workers=2, shard_size=16))
    (rows1, v1), (rows2, v2) = faces_of(one), faces_of(two)
    assert rows1 == rows2 and len(rows1) == 24 * 6 + 5
    np.testing.assert_allclose(v1, v2, atol=1e-5)
    thumbs = lambda ix: [p.read_bytes() for p in sorted((ix.store.root / "thumbs").glob("*.jpg"))]  # noqa: E731
    assert thumbs(one) == thumbs(two)
    assert r1.problems == r2.problems and [p["path"] for p in r1.problems] == [str(gallery / "broken.png"),
                                                                              str(gallery / "id_0001" / "cut.png")]
    assert not list((tmp_path / "two").rglob("*.npz"))  # no copy of the faces stays in the index
    assert (r1.faces, r1.images) == (r2.faces, r2.images)
    assert one.threshold == two.threshold
    one.close()
    two.close()


@pytest.mark.skipif(not (SHARED / "samples").is_dir(), reason="needs ../shared/data/samples")
def test_library_add_with_workers_equals_one_process(tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SHARED / "samples" / "multiface.jpg", photos / "group.jpg")  # six faces: one photo, six people at most
    for k, person in enumerate(sorted((SHARED / "lfw" / "images").iterdir())[:5]):
        shutil.copy(sorted(person.glob("*.jpg"))[0], photos / f"{k}.jpg")
    shutil.copy(photos / "0.jpg", photos / "copy-of-0.jpg")  # the same content twice: one photo
    one = open_library(tmp_path / "one", {"weights": tiny_weights}, detect=True)
    two = open_library(tmp_path / "two", {"weights": tiny_weights}, detect=True)
    r1 = one.add_photos([p for p, _ in gallery_images(photos)])
    r2 = two.add_photos([p for p, _ in gallery_images(photos)], runner=Runner(workers=2, shard_size=3))
    assert (r1.photos, r1.already, r1.faces) == (r2.photos, r2.already, r2.faces) == (6, 1, r1.faces)
    assert r1.faces >= 11  # every face of the group photo, one face of each portrait at least
    q = ("SELECT f.path, f.box, fp.person_id, fp.how, fp.landmarks FROM faces f JOIN face_people fp ON fp.face_id = f.id "
         "ORDER BY f.id")
    assert one.db.execute(q).fetchall() == two.db.execute(q).fetchall()
    q = "SELECT hash, path, bytes, width, height, taken_at FROM photos ORDER BY id"
    assert one.db.execute(q).fetchall() == two.db.execute(q).fetchall()
    np.testing.assert_allclose(one.store.all_vectors()[1], two.store.all_vectors()[1], atol=1e-5)
    with pytest.raises(IndexError_, match="inside"):  # a library holding the photos it adds is refused
        lib = open_library(photos / "lib", {"weights": tiny_weights}, detect=True)
        (photos / "lib" / "x.jpg").write_bytes((photos / "0.jpg").read_bytes())
        lib.add_photos([photos / "lib" / "x.jpg"], runner=Runner(workers=2))
    one.close()
    two.close()


def test_a_killed_worker_resumes_to_the_same_index(gallery: Path, tmp_path: Path, tiny_weights: str,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import faceprint.bulk.runner as runner_module

    killed = subprocess.run([sys.executable, "-m", "faceprint", "index", "build", str(gallery), "--out", str(tmp_path / "ix"),
                             "--weights", tiny_weights, "--no-detect", "--workers", "2", "--shard-size", "16"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "FACEPRINT_FAULT": "bulk.shard@2"})  # a worker dies at its 2nd shard
    assert killed.returncode == 2 and "a worker process died" in killed.stderr and "Traceback" not in killed.stderr
    state = next((tmp_path / ".ix.building" / ".bulk" / ".faceprint-shards").glob("facesjob-*"))
    records = {p.stem for p in state.glob("shard-*.json")}
    unrecorded = {p.stem for p in state.glob("shard-*.npz")} - records
    assert records and unrecorded and not (tmp_path / "ix").exists()  # some shards recorded; the kill landed after a
    # shard's faces were written and before its record; the build did not finish
    reports = []
    real = runner_module.run_job
    monkeypatch.setattr(runner_module, "run_job", lambda *a, **k: reports.append(real(*a, **k)) or reports[-1])
    got, _ = build_index(gallery, tmp_path / "ix", {"weights": tiny_weights, "backend": "torch"}, detect=False,
                         runner=Runner(workers=2, shard_size=16))  # the same build as the command's: it resumes
    (resumed,) = reports
    assert resumed.shards_skipped == len(records) and resumed.shards_run == resumed.shards - len(records)
    ref, _ = build_index(gallery, tmp_path / "ref", {"weights": tiny_weights}, detect=False)
    (rows, v), (ref_rows, ref_v) = faces_of(got), faces_of(ref)
    assert rows == ref_rows  # nothing missing, nothing twice
    np.testing.assert_allclose(v, ref_v, atol=1e-5)
    got.close()
    ref.close()


def test_cluster_with_workers_equals_one_process(gallery: Path, tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    from faceprint.cluster import cluster_photos
    from faceprint.models import Embedder, face_embedder

    faces = face_embedder(Embedder.from_spec({"weights": tiny_weights}), detect=False)
    one = cluster_photos(gallery, tmp_path / "one", faces, 0.5)
    two = cluster_photos(gallery, tmp_path / "two", faces, 0.5,
                         runner=Runner(workers=2, shard_size=16), spec={"weights": tiny_weights})
    assert (tmp_path / "one" / "clusters.csv").read_text() == (tmp_path / "two" / "clusters.csv").read_text()
    assert one.paths == two.paths and (one.labels == two.labels).all() and len(one.paths) == 24 * 6 + 5
    assert one.problems == two.problems
    thumbs = lambda d: [p.read_bytes() for p in sorted((d / "thumbs").glob("*.jpg"))]  # noqa: E731
    assert thumbs(tmp_path / "one") == thumbs(tmp_path / "two")
    assert [p["path"] for p in one.problems] == [p["path"] for p in two.problems]



def test_library_add_with_workers_equals_one_process_across_chunks(gallery: Path, tmp_path: Path,
                                                                   tiny_weights: str) -> None:  # noqa: F811
    """More photos than one 16-photo transaction, unreadable files among them, and a photo edited between two adds:
    the runner's library is the one-process library row for row."""
    paths = [p for p, _ in gallery_images(gallery)]
    libs = [open_library(tmp_path / name, {"weights": tiny_weights}, detect=False, config=None) for name in ("one", "two")]
    runners = [None, Runner(workers=2, shard_size=7)]
    reports = [lib.add_photos(paths, runner=r) for lib, r in zip(libs, runners)]
    assert reports[0] == reports[1] and reports[0].photos > 16
    edited = gallery / "id_0004" / "0000.png"
    edited.write_bytes((gallery / "id_0005" / "0003.png").read_bytes()[:-1] + b"\x00")  # new content, same path
    again = [lib.add_photos(paths, runner=r) for lib, r in zip(libs, runners)]
    assert again[0] == again[1] and again[0].photos == 1  # read again, not taken from an earlier run's shards
    q = ("SELECT f.path, f.identity, fp.photo_id, fp.person_id, fp.how FROM faces f JOIN face_people fp ON "
         "fp.face_id = f.id ORDER BY f.id")
    assert libs[0].db.execute(q).fetchall() == libs[1].db.execute(q).fetchall()
    assert not (tmp_path / "two" / ".bulk").exists()  # the shard state is gone once read back
    for lib in libs:
        lib.close()


def test_index_build_of_one_file_with_workers(gallery: Path, tmp_path: Path, tiny_weights: str,  # noqa: F811
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import faceprint.bulk.runner as runner_module

    monkeypatch.setattr(runner_module, "run_job", lambda *a, **k: pytest.fail("one photo went to the runner"))
    ix, report = build_index(gallery / "loose.png", tmp_path / "ix", {"weights": tiny_weights}, detect=False, runner=Runner(workers=2))
    assert report.faces == 1 and len(ix.store) == 1  # in this process
    ix.close()


def test_a_library_add_killed_while_committing_resumes_without_detecting_again(tiny_faces: Path, tmp_path: Path,  # noqa: F811
                                                                               tiny_weights: str,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's shard state lives until its photos are committed: a kill inside the second chunk's transaction
    leaves every shard recorded, and the rerun runs none of them again (the first chunk's shards are committed)."""
    import faceprint.bulk.runner as runner_module
    from faceprint.people import open_library

    photos = tmp_path / "photos"
    photos.mkdir()
    for k, p in enumerate(sorted(tiny_faces.rglob("*.png"))[:40]):
        shutil.copy(p, photos / f"{k:03d}.png")
    lib = tmp_path / "lib"
    killed = subprocess.run([sys.executable, "-m", "faceprint", "library", "add", str(lib), str(photos), "--weights",
                             tiny_weights, "--no-detect", "--workers", "2", "--shard-size", "8"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "FACEPRINT_FAULT": "library.assign@2"})  # inside the 2nd chunk's commit
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = next((lib / ".bulk" / ".faceprint-shards").glob("facesjob-*"))
    assert len(list(state.glob("shard-*.json"))) == 5  # detection had finished: every shard recorded, and kept
    library = open_library(lib)
    assert library.stats()["photos"] == 16  # the first chunk committed, the second rolled back
    reports = []
    real = runner_module.run_job
    monkeypatch.setattr(runner_module, "run_job", lambda *a, **k: reports.append(real(*a, **k)) or reports[-1])
    again = library.add_photos(sorted(photos.iterdir()), runner=Runner(workers=2, shard_size=8))
    (resumed,) = reports
    assert resumed.shards_run == 0 and resumed.shards_skipped == 3  # no photo detected again
    assert again.photos == 24 and again.already == 16 and library.stats()["photos"] == 40
    assert not state.exists()  # committed: the shard state is gone
    ref = open_library(tmp_path / "ref", {"weights": tiny_weights}, detect=False)
    ref.add_photos(sorted(photos.iterdir()))
    (rows, v), (ref_rows, ref_v) = faces_of(library.index), faces_of(ref.index)
    assert rows == ref_rows
    np.testing.assert_allclose(v, ref_v, atol=1e-5)
    library.close()
    ref.close()
