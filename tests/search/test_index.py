"""The face index: build/add/remove/search against brute force, crash safety, model checks, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint.cli.main import app
from faceprint.models import Embedder
from faceprint.search import FaceStore, IndexError_, build_index, calibrate_threshold, open_index
from faceprint.search.ann import build_ann

runner = CliRunner()


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_store_search_equals_brute_force(tmp_path: Path) -> None:
    store = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=8)
    vecs = _unit(50, 8)
    ids = store.add(vecs, [f"p{i}.jpg" for i in range(50)], [f"id{i % 5}" for i in range(50)], [None] * 50)
    q = _unit(3, 8, seed=1)
    hits = store.search(q, k=4)
    d = ((q[:, None] - vecs[None]) ** 2).sum(-1)
    for row, h in zip(d, hits):
        order = np.argsort(row)[:4]
        assert [m.face.id for m in h] == [ids[i] for i in order]
        np.testing.assert_allclose([m.distance for m in h], row[order], atol=1e-5)
    assert store.remove(identity="id0") == 10 and len(store) == 40
    assert all(m.face.identity != "id0" for h in store.search(q, k=40) for m in h)


def test_reopen_rebuilds_a_stale_or_missing_faiss_file(tmp_path: Path) -> None:
    store = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=8)
    vecs = _unit(20, 8)
    store.add(vecs, [f"p{i}" for i in range(20)], [None] * 20, [None] * 20)
    store.close()
    current = tmp_path / "ix" / json.loads((tmp_path / "ix" / "vectors.json").read_text())["file"]
    assert current.is_file()
    current.write_bytes(b"garbage")
    again = FaceStore(tmp_path / "ix")
    assert again.search(vecs[:1], k=1)[0][0].distance < 1e-5
    for f in (tmp_path / "ix").glob("vectors-*.faiss"):
        f.unlink()
    assert len(FaceStore(tmp_path / "ix").search(vecs[:2], k=3)[1]) == 3


def test_bad_vectors_add_nothing(tmp_path: Path) -> None:
    store = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=4)
    bad = _unit(3, 4)
    bad[1, 0] = np.nan
    with pytest.raises(IndexError_, match="NaN"):
        store.add(bad, ["a", "b", "c"], [None] * 3, [None] * 3)
    with pytest.raises(IndexError_, match="expected"):
        store.add(_unit(2, 5), ["a", "b"], [None] * 2, [None] * 2)
    assert len(store) == 0


def test_a_reused_id_never_shows_a_leftover_thumbnail(tmp_path: Path) -> None:
    """Ids of a killed add come back (SQLite rolls its sequence back); an add without thumbnails clears old files."""
    store = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=4)
    (tmp_path / "ix" / "thumbs").mkdir(exist_ok=True)
    (tmp_path / "ix" / "thumbs" / "1.jpg").write_bytes(b"a killed add's thumbnail")
    (face_id,) = store.add(_unit(1, 4), ["a"], ["A"], [None])
    assert face_id == 1 and store.thumb_path(1) is None and not (tmp_path / "ix" / "thumbs" / "1.jpg").exists()


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_find_exact_neighbours_mostly(kind: str) -> None:
    rng = np.random.default_rng(0)  # clustered like face embeddings: 300 identities × 10 images
    vecs = np.repeat(_unit(300, 32), 10, 0) + 0.05 * rng.normal(size=(3000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    q = vecs[::60] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = np.argsort(-(q @ vecs.T), axis=1)[:, :10]
    _, got = build_ann(vecs, np.arange(3000), kind).search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, got)])
    assert recall >= 0.8


def test_calibrated_threshold_is_the_far_quantile_of_impostor_pairs() -> None:
    rng = np.random.default_rng(0)
    centres = _unit(40, 16)
    x = np.repeat(centres, 5, 0) + 0.1 * rng.normal(size=(200, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    labels = [f"id{i // 5}" for i in range(200)]
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    same = np.equal.outer(np.array(labels), np.array(labels))
    for far in (0.01, 0.05):
        t = calibrate_threshold(x, labels, far=far)
        impostors = d[~same]
        assert abs(np.mean(impostors < t) - far) < 0.01  # sampled pairs estimate the FAR of all pairs
        assert np.mean(d[same & ~np.eye(200, dtype=bool)] < t) > 0.95  # tight identities stay accepted
    assert calibrate_threshold(x[:3], ["a", "a", "a"]) is None


def test_default_far_is_met_within_20_percent() -> None:
    """The default FAR 1e-3, on a small gallery (every pair) and a large one (sampled pairs), against all pairs."""
    rng = np.random.default_rng(1)
    for ids, per in ((60, 5), (400, 5)):
        x = np.repeat(_unit(ids, 16), per, 0) + 0.25 * rng.normal(size=(ids * per, 16))
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        labels = np.repeat(np.arange(ids), per)
        t = calibrate_threshold(x, [f"id{i}" for i in labels])
        d = ((x[:, None] - x[None]) ** 2).sum(-1)
        impostor = d[np.not_equal.outer(labels, labels)]
        tolerance = 0.03 if ids * per <= 1400 else 0.08  # every pair / one million sampled pairs
        assert abs(np.mean(impostor < t) / 1e-3 - 1) < tolerance, (ids, np.mean(impostor < t))


def test_build_search_and_model_check(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    index, report = build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)
    assert report.faces == 144 and report.images == 144 and not report.problems
    probe = sorted((tiny_faces / "id_003").iterdir())[0] if (tiny_faces / "id_003").exists() else next(tiny_faces.rglob("*.png"))
    hits = index.query(probe, k=3)
    assert len(hits) == 1 and hits[0].matches[0].face.path == str(probe) and hits[0].matches[0].distance < 1e-5
    assert (tmp_path / "ix" / "thumbs" / f"{hits[0].matches[0].face.id}.jpg").is_file()
    other = Embedder.from_pretrained(tiny_weights)
    with __import__("torch").no_grad():
        next(other.model.parameters()).add_(1.0)
    with pytest.raises(IndexError_, match="another model"):
        open_index(tmp_path / "ix", embedder=other)
    with pytest.raises(IndexError_, match="exists"):
        build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)


def test_cli_index_commands(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    ix = tmp_path / "ix"
    half = tmp_path / "half"
    half.mkdir()
    for d in sorted(tiny_faces.iterdir())[:12]:
        (half / d.name).symlink_to(d, target_is_directory=True)
    r = runner.invoke(app, ["index", "build", str(half), "--out", str(ix), "--weights", tiny_weights, "--no-detect"])
    assert r.exit_code == 0, r.output
    new = sorted(tiny_faces.iterdir())[12]
    r = runner.invoke(app, ["index", "add", str(ix), str(new), "--identity", new.name])
    assert r.exit_code == 0 and "added 6 faces" in r.output, r.output
    probe = sorted(new.iterdir())[0]
    r = runner.invoke(app, ["index", "search", str(ix), str(probe), "-k", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["faces"][0]["matches"][0]["identity"] == new.name and out["faces"][0]["matches"][0]["same"]
    r = runner.invoke(app, ["index", "remove", str(ix), "--identity", new.name])
    assert "removed 6" in r.output
    r = runner.invoke(app, ["index", "info", str(ix), "--json", str(tmp_path / "i.json")])
    assert json.loads((tmp_path / "i.json").read_text())["faces"] == 72


@pytest.mark.parametrize("fault", ["store.add.rows", "store.add.thumbs@5"])
def test_killed_add_leaves_the_old_index_intact(fault: str, tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """`index add` SIGKILLed inside its transaction (after the rows, or after five thumbnails) adds nothing, serves
    no leftover thumbnail, and a rerun adds every face once."""
    ix = tmp_path / "ix"
    first, second = sorted(tiny_faces.iterdir())[:2]
    build_index(first, ix, {"weights": tiny_weights}, detect=False)[0].close()
    before = FaceStore(ix).info()
    cmd = [sys.executable, "-m", "faceprint", "index", "add", str(ix), str(second), "--identity", "B"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "FACEPRINT_FAULT": fault})
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr  # the kill landed at the fault point
    after = FaceStore(ix)
    assert after.info()["faces"] == before["faces"] and after.info()["generation"] == before["generation"]
    leftovers = [p for p in (ix / "thumbs").glob("*.jpg") if int(p.stem) > before["faces"]]
    assert fault.startswith("store.add.rows") or len(leftovers) == 5  # the thumbnail kill left files behind ...
    assert all(after.thumb_path(int(p.stem)) is None for p in leftovers)  # ... which are not served
    after.close()
    index = open_index(ix)
    probe = sorted(first.iterdir())[0]
    assert index.query(probe, k=1)[0].matches[0].face.path == str(probe)
    index.store.close()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert FaceStore(ix).info()["faces"] == before["faces"] + len(list(second.iterdir()))


def test_killed_build_leaves_the_old_index_intact_and_resumes(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """`index build --force` killed inside its third chunk's transaction (a fault point, checked to have landed):
    the old index is untouched, two chunks are kept in the .building folder, and a rerun resumes to the end."""
    ix = tmp_path / "ix"
    first = sorted(tiny_faces.iterdir())[0]
    build_index(first, ix, {"weights": tiny_weights}, detect=False)[0].close()
    before = FaceStore(ix).info()
    big = tmp_path / "big"
    for i in range(15):  # 300 images: five chunks of 64
        (big / f"p{i}").mkdir(parents=True)
        for j, src in enumerate(sorted(tiny_faces.rglob("*.png"))[:20]):
            (big / f"p{i}" / f"{j}.png").symlink_to(src)
    cmd = [sys.executable, "-m", "faceprint", "index", "build", str(big), "--out", str(ix), "--weights", tiny_weights,
           "--no-detect", "--force"]
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "FACEPRINT_FAULT": "store.add.rows@3"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    after = FaceStore(ix).info()
    assert after["faces"] == before["faces"] and after["generation"] == before["generation"]
    building = tmp_path / ".ix.building"
    assert len(FaceStore(building)) == 128  # the two committed chunks, not the third
    # resumes: 172 images left are 3 chunk adds; a build that started over would make a 4th and be killed there
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "FACEPRINT_FAULT": "store.add.rows@4"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert FaceStore(ix).info()["faces"] == 300 and not building.exists()


def test_index_follows_the_model_and_keeps_its_margin(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """A model for ready crops is not run behind MTCNN unless asked; the crop margin is stored, and an index from
    before margins were stored opens with the 32 px it was built with."""
    from faceprint.backbones import create_backbone
    from faceprint.models import PretrainedInfo, save_pretrained

    model = create_backbone("small_cnn", embedding_dim=16)
    save_pretrained(model.state_dict(), PretrainedInfo(name="crops", backbone="small_cnn", embedding_dim=16,
                                                       image_size=32, align="none"))
    index, report = build_index(tiny_faces, tmp_path / "ix", {"weights": "crops"})
    assert report.faces == 144  # every whole image indexed (MTCNN finds no face in these synthetic images)
    assert index.faces.mtcnn is None and index.store.meta["embedder"]["detect"] is False
    assert index.store.meta["embedder"]["margin"] == pytest.approx(6.4)
    index.store.close()
    build_index(tiny_faces, tmp_path / "ix2", {"weights": tiny_weights}, detect=False)[0].store.close()
    store = FaceStore(tmp_path / "ix2")
    assert store.meta["embedder"]["margin"] == pytest.approx(6.4)
    spec = {k: v for k, v in store.meta["embedder"].items() if k != "margin"}
    store.set_meta({"embedder": spec})  # as an index written before this change
    store.close()
    old = open_index(tmp_path / "ix2")
    assert old.faces.margin == 32.0 and old.faces.mtcnn is None
    old.store.close()


def test_resumed_build_with_other_detection_flags_is_refused(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    from faceprint.search.index import build_index as build

    building = tmp_path / ".ix.building"
    FaceStore(building, create=True, model_id=open_model_id(tiny_weights), dim=16,
              embedder={"weights": tiny_weights, "detect": True, "margin": 6.4}).close()
    with pytest.raises(IndexError_, match="begun with detect=True"):
        build(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)
    assert building.exists() and not (tmp_path / "ix").exists()  # nothing of the leftover build was lost
    other = tmp_path / ".other.building"  # a leftover of another gallery, same flags
    FaceStore(other, create=True, model_id=open_model_id(tiny_weights), dim=16,
              embedder={"weights": tiny_weights, "detect": False, "margin": 6.4, "source": str(tmp_path / "elsewhere")}).close()
    with pytest.raises(IndexError_, match="same gallery"):
        build(tiny_faces, tmp_path / "other", {"weights": tiny_weights}, detect=False)


def open_model_id(name: str) -> str:
    from faceprint.models import model_fingerprint

    return model_fingerprint(Embedder.from_pretrained(name))



def test_an_open_index_sees_another_processes_adds(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    ix = tmp_path / "ix"
    first, second = sorted(tiny_faces.iterdir())[:2]
    build_index(first, ix, {"weights": tiny_weights}, detect=False)[0].close()
    live = open_index(ix)  # as a running server holds it
    probe = sorted(second.iterdir())[0]
    assert live.query(probe, k=1)[0].matches[0].face.path != str(probe)
    out = subprocess.run([sys.executable, "-m", "faceprint", "index", "add", str(ix), str(second)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert live.query(probe, k=1)[0].matches[0].face.path == str(probe)  # caught up on its next search
    assert len(list(ix.glob("vectors-*.faiss"))) == 1  # one FAISS file, the one vectors.json names: the build's
    named = json.loads((ix / "vectors.json").read_text())  # (6 added faces are not worth rewriting it for) ...
    assert named["count"] == 6 and named["generation"] < FaceStore(ix).meta["generation"]
    from faceprint.search.vectors import FaissVectors

    real, rebuilt = FaissVectors.rebuild, []
    FaissVectors.rebuild = lambda *a: (rebuilt.append(1), real(*a))[1]  # type: ignore[method-assign]
    try:  # ... and a reopen catches up with the rows added since, without a rebuild
        again = FaceStore(ix)
        assert again.searchable() == 12 and rebuilt == []
        assert again.search(live.faces.embed_crops(live.faces.crops(live.faces.load(probe))), k=1)[0][0].face.path == str(probe)
    finally:
        FaissVectors.rebuild = real  # type: ignore[method-assign]
    again.close()


def test_a_second_writer_waits_for_the_first_then_goes_on(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    from faceprint.search.lock import writer_lock

    ix = tmp_path / "ix"
    first, second = sorted(tiny_faces.iterdir())[:2]
    build_index(first, ix, {"weights": tiny_weights}, detect=False)[0].close()
    with writer_lock(ix):  # this test is the first writer
        proc = subprocess.Popen([sys.executable, "-m", "faceprint", "index", "add", str(ix), str(second)],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert "waiting: another process is writing" in line and proc.poll() is None
        time.sleep(1.0)
        assert proc.poll() is None and len(FaceStore(ix)) == 6  # still waiting a second later; nothing added
    assert proc.wait(timeout=300) == 0
    assert len(FaceStore(ix)) == 12
    store = FaceStore(ix)
    store.lock_timeout = 0.3
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:  # another thread's descriptor: flock refuses it as another process's
        with writer_lock(ix):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=other_writer)
    holder.start()
    assert held.wait(30)
    try:
        with pytest.raises(IndexError_, match="another process has been writing"):
            store.add(_unit(1, 16), ["x"], [None], [None])
    finally:
        release.set()
        holder.join()
    assert len(store) == 12


def test_two_processes_adding_the_same_photos_add_each_once(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    ix = tmp_path / "ix"
    first = sorted(tiny_faces.iterdir())[0]
    build_index(first, ix, {"weights": tiny_weights}, detect=False)[0].close()
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(tiny_faces.rglob("*.png"))[6:66]:
        (photos / f"{p.parent.name}_{p.name}").symlink_to(p)
    from faceprint.search.lock import writer_lock

    cmd = [sys.executable, "-m", "faceprint", "index", "add", str(ix), str(photos), "--identity", "X"]
    with writer_lock(ix):  # both processes look up what is indexed, embed, and then wait here to commit
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        assert all("waiting" in p.stderr.readline() for p in procs)  # type: ignore[union-attr]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    store = FaceStore(ix)
    paths = [r[0] for r in store.db.execute("SELECT path FROM faces")]
    assert len(paths) == 6 + 60 and len(set(paths)) == len(paths)  # none lost, none twice


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_adds_and_removes_update_faiss_in_place_and_match_a_rebuild(kind: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Adds never rebuild the structure and it then answers as exact search over the database; removals drop ids
    in place from the exact and IVF structures and rebuild HNSW (FAISS cannot drop ids from its graph);
    a reopen loads the file close wrote, without rebuilding."""
    import faiss

    from faceprint.search import ann

    store = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=8, kind=kind)
    store.add(_unit(1200, 8), [f"a{i}" for i in range(1200)], ["A"] * 1200, [None] * 1200, sync=False)
    store.sync()
    builds = []
    real_build = ann.build_ann
    monkeypatch.setattr(ann, "build_ann", lambda *a, **k: (builds.append(1), real_build(*a, **k))[1])

    def exact_agreement() -> float:
        if kind == "ivf":  # probe every list: an exhaustive IVF must equal exact search
            base = faiss.extract_index_ivf(store.vectors.index)
            base.nprobe = base.nlist
        ids, vecs, _ = store.all_vectors()
        q = _unit(20, 8, seed=2)
        want = real_build(vecs, ids, "flat").search(q, 5)[1]
        got = [[m.face.id for m in row] for row in store.search(q, k=5)]
        assert store.vectors.count() == len(store)
        return float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got, want)]))

    store.add(_unit(30, 8, seed=1), [f"b{i}" for i in range(30)], ["B"] * 30, [None] * 30)
    store.add(_unit(5, 8, seed=3), [f"c{i}" for i in range(5)], ["C"] * 5, [None] * 5)
    assert builds == []  # two adds, no rebuild
    assert exact_agreement() == 1.0 if kind != "hnsw" else exact_agreement() > 0.9
    assert store.remove(identity="B") == 30 and store.remove(ids=[1, 2, 3]) == 3
    assert builds == ([1, 1] if kind == "hnsw" else [])  # exact and IVF remove in place
    assert exact_agreement() == 1.0 if kind != "hnsw" else exact_agreement() > 0.9
    assert len(store) == 1200 - 3 + 5
    store.close()
    from faceprint.search.vectors import FaissVectors

    monkeypatch.setattr(FaissVectors, "rebuild", lambda *a: (_ for _ in ()).throw(AssertionError("rebuilt on reopen")))
    again = FaceStore(tmp_path / "ix")
    assert again.vectors.count() == 1202 and again.search(_unit(1, 8, seed=3), k=1)[0][0].face.path == "c0"


def test_identity_filter_is_exact_on_approximate_faiss_kinds(tmp_path: Path) -> None:
    vecs = _unit(3000, 32, seed=3)
    idents = [f"p{i % 50}" for i in range(3000)]
    queries = _unit(10, 32, seed=4)
    for kind in ("ivf", "hnsw"):
        store = FaceStore(tmp_path / kind, create=True, model_id="m", dim=32, kind=kind)
        store.add(vecs, [f"x{i}" for i in range(3000)], idents, [None] * 3000)
        mine = np.array([i for i, p in enumerate(idents) if p == "p7"])
        want = np.argsort(-(queries @ vecs[mine].T), axis=1)[:, :5]
        got = store.search(queries, k=5, identity="p7")
        assert [[m.face.path for m in h] for h in got] == [[f"x{mine[j]}" for j in row] for row in want]
        store.close()
