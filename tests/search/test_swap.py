"""`index build --force` under a live reader: the new index is swapped in by rename and the open store follows it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from faceprint.search import FaceStore, IndexReplacedError, build_index, open_index
from faceprint.search.index import _clear
from faceprint.search.lock import WriterBusyError, writer_lock


def _galleries(tiny_faces: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two galleries of different people from the same synthetic set."""
    people = sorted(tiny_faces.iterdir())
    a, b = tmp_path / "a", tmp_path / "b"
    for dst, chosen in ((a, people[:4]), (b, people[4:10])):
        dst.mkdir()
        for p in chosen:
            shutil.copytree(p, dst / p.name)
    return a, b


def test_an_open_index_follows_a_forced_rebuild(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    a, b = _galleries(tiny_faces, tmp_path)
    ix = tmp_path / "ix"
    build_index(a, ix, {"weights": tiny_weights}, detect=False)[0].close()
    live = open_index(ix)  # as a server holds it
    probe = sorted((b / sorted(os.listdir(b))[0]).iterdir())[0]
    assert live.query(probe, k=1)[0].matches[0].face.identity in {p.name for p in a.iterdir()}
    old_ino = os.stat(ix / "faces.sqlite").st_ino
    build_index(b, ix, {"weights": tiny_weights}, detect=False, force=True)[0].close()
    assert os.stat(ix / "faces.sqlite").st_ino != old_ino and not (tmp_path / ".ix.old").exists()
    hit = live.query(probe, k=1)[0].matches[0]  # the next search reads the new index
    assert hit.face.path == str(probe) and hit.distance < 1e-5
    assert len(live.store) == 36
    thumb = live.store.thumb_path(hit.face.id)
    assert thumb is not None and thumb.parent.parent == ix
    vec = live.faces.embed_crops(live.faces.crops(live.faces.load(probe)))
    live.store.add(vec, ["enrolled"], ["E"], [None], [b"jpg"])  # writes go into the new index ...
    live.close()
    again = FaceStore(ix)
    assert len(again) == 37 and again.identities()["E"] == 1  # ... and are there when it is reopened
    assert again.search(vec, k=2)[0][0].distance < 1e-5  # its FAISS file was not overwritten by the old store
    again.close()


def test_a_rebuild_with_another_model_is_refused_not_mixed(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    import torch

    from faceprint.backbones import create_backbone
    from faceprint.models import PretrainedInfo, save_pretrained

    a, b = _galleries(tiny_faces, tmp_path)
    ix = tmp_path / "ix"
    build_index(a, ix, {"weights": tiny_weights}, detect=False)[0].close()
    live = open_index(ix)
    torch.manual_seed(1)
    save_pretrained(create_backbone("small_cnn", embedding_dim=16).state_dict(),
                    PretrainedInfo(name="other", backbone="small_cnn", embedding_dim=16, image_size=32))
    build_index(b, ix, {"weights": "other"}, detect=False, force=True)[0].close()
    with pytest.raises(IndexReplacedError, match="another model or other detection settings; restart"):
        live.store.search(np.ones((1, 16), np.float32) / 4, k=1)
    with pytest.raises(IndexReplacedError, match="another model"):
        live.store.add(np.ones((1, 16), np.float32) / 4, ["x"], ["x"], [None])
    live.close()
    assert len(FaceStore(ix)) == 36  # nothing of the old index leaked into the new one


def test_a_writer_waiting_through_a_swap_locks_the_new_index(tmp_path: Path) -> None:
    root = tmp_path / "ix"
    root.mkdir()
    got, release = threading.Event(), threading.Event()

    def waiter() -> None:
        with writer_lock(root, timeout=30, quiet=True):
            got.set()
            release.wait(30)

    with writer_lock(root):
        t = threading.Thread(target=waiter)
        t.start()
        assert not got.wait(0.3)  # it waits on the old index's lock file
        root.rename(tmp_path / "old")
        root.mkdir()  # the swapped-in index
    assert got.wait(30)
    with pytest.raises(WriterBusyError):  # the waiter now holds the new index's lock ...
        with writer_lock(root, timeout=0, quiet=True):
            pass
    with writer_lock(tmp_path / "old", timeout=0, quiet=True):  # ... not the old one's
        pass
    release.set()
    t.join(30)


def test_a_build_killed_inside_the_swap_is_finished_by_a_rerun(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    a, b = _galleries(tiny_faces, tmp_path)
    ix = tmp_path / "ix"
    build_index(a, ix, {"weights": tiny_weights}, detect=False)[0].close()
    cmd = [sys.executable, "-m", "faceprint", "index", "build", str(b), "--out", str(ix), "--weights", tiny_weights,
           "--no-detect", "--force"]
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "FACEPRINT_FAULT": "swap"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert not ix.exists() and len(FaceStore(tmp_path / ".ix.old")) == 24  # killed between the two renames
    assert len(FaceStore(tmp_path / ".ix.building")) == 36
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(FaceStore(ix)) == 36
    assert not (tmp_path / ".ix.old").exists() and not (tmp_path / ".ix.building").exists()


def test_searches_on_several_threads_through_swaps_never_mix_two_indexes(tiny_faces: Path, tmp_path: Path,
                                                                           tiny_weights: str) -> None:
    """Four threads search while the folder is swapped back and forth: no crash, and every hit's distance is the
    distance to the vector stored under that face's path (a hit resolved against the other index would not be)."""
    a, b = _galleries(tiny_faces, tmp_path)
    builds = []
    for name, gallery in (("ia", a), ("ib", b)):
        build_index(gallery, tmp_path / name, {"weights": tiny_weights}, detect=False)[0].close()
        builds.append(tmp_path / name)
    ix = tmp_path / "ix"
    shutil.copytree(builds[0], ix)
    live = open_index(ix)
    truth = {}
    for root in builds:
        s = FaceStore(root)
        ids, vecs, _ = s.all_vectors()
        truth.update({f.path: vecs[list(ids).index(i)] for i, f in s.faces(list(map(int, ids))).items()})
        s.close()
    queries = np.stack(list(truth.values())[::7])
    errors, bad, stop, seen = [], [], threading.Event(), set()

    def search() -> None:
        while not stop.is_set():
            try:
                for q, hits in zip(queries, live.store.search(queries, k=3)):
                    seen.update(h.face.path for h in hits)
                    bad.extend(h for h in hits if abs(float(((truth[h.face.path] - q) ** 2).sum()) - h.distance) > 1e-4)
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):  # swap in the other index, as build --force does (two renames under the writer lock)
        src = builds[(i + 1) % 2]
        tmp = tmp_path / ".ix.building"
        shutil.copytree(src, tmp)
        _clear(tmp_path / ".ix.old")  # as build --force does (a reader may still hold the last one)
        with writer_lock(ix):
            ix.rename(tmp_path / ".ix.old")
            tmp.rename(ix)
    stop.set()
    for t in threads:
        t.join(60)
    live.close()
    assert not errors and not bad
    sources = {str(p) for g in (a, b) for p in g.rglob("*.png")}
    assert seen & {str(p) for p in a.rglob("*.png")} and seen & {str(p) for p in b.rglob("*.png")} and seen <= sources


def test_an_old_store_that_never_followed_does_not_overwrite_the_new_faiss_file(tiny_faces: Path, tmp_path: Path,
                                                                                  tiny_weights: str) -> None:
    a, b = _galleries(tiny_faces, tmp_path)
    ix = tmp_path / "ix"
    build_index(a, ix, {"weights": tiny_weights}, detect=False)[0].close()
    old = FaceStore(ix)
    old.add(np.full((1, 16), 0.25, np.float32), ["in-memory"], ["X"], [None])  # added in place: its file is stale
    assert old.vectors.unsaved  # the state the guard is for
    build_index(b, ix, {"weights": tiny_weights}, detect=False, force=True)[0].close()
    tag = json.loads((ix / "vectors.json").read_text())
    old.close()  # without the guard this writes the old index's vectors over the new index's file
    assert json.loads((ix / "vectors.json").read_text()) == tag


def test_enrolments_made_during_a_rebuild_are_carried_into_the_new_index(tiny_faces: Path, tmp_path: Path,
                                                                          tiny_weights: str) -> None:
    a, b = _galleries(tiny_faces, tmp_path)
    ix = tmp_path / "ix"
    build_index(a, ix, {"weights": tiny_weights}, detect=False)[0].close()
    live = FaceStore(ix)
    vec = np.full((1, 16), 0.25, np.float32)
    live.add(vec, ["upload:0123456789abcdef"], ["Ada"], [[1.0, 2.0, 3.0, 4.0]], [b"thumb-bytes"])
    live.close()
    build_index(b, ix, {"weights": tiny_weights}, detect=False, force=True)[0].close()
    new = FaceStore(ix)
    assert len(new) == 37 and new.identities()["Ada"] == 1
    hit = new.search(vec, k=1)[0][0]
    assert hit.face.path == "upload:0123456789abcdef" and hit.face.box == [1.0, 2.0, 3.0, 4.0] and hit.distance < 1e-6
    assert new.thumb_path(hit.face.id).read_bytes() == b"thumb-bytes"
    assert not any(f.identity in {p.name for p in a.iterdir()} for f in new.faces(list(range(1, 100))).values())


def test_a_swap_between_the_faiss_search_and_the_id_lookup_is_not_mixed(tiny_faces: Path, tmp_path: Path,
                                                                         tiny_weights: str) -> None:
    """Deterministic: the swap (and another thread's follow) lands right after the FAISS search; the hits must
    still come from the index that was searched."""
    a, b = _galleries(tiny_faces, tmp_path)
    ix = tmp_path / "ix"
    build_index(a, ix, {"weights": tiny_weights}, detect=False)[0].close()
    live = open_index(ix)
    probe = sorted((a / sorted(os.listdir(a))[0]).iterdir())[0]
    vec = live.faces.embed_crops(live.faces.crops(live.faces.load(probe)))
    searched = live.store.vectors
    search, swapped = searched.search, []

    def search_then_swap(*args):  # type: ignore[no-untyped-def]
        got = search(*args)
        build_index(b, ix, {"weights": tiny_weights}, detect=False, force=True)[0].close()
        swapped.append(live.store.vectors)  # another request thread follows the swap
        return got

    searched.search = search_then_swap  # type: ignore[method-assign]
    hit = live.store.search(vec, k=1)[0][0]
    assert swapped and swapped[0] is not searched  # the swap really landed between the search and the lookup
    assert hit.face.path == str(probe) and hit.distance < 1e-5  # the searched index's face, not id 1 of the new one
    live.close()
