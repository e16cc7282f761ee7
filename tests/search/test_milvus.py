"""The Milvus vector backend against FAISS exact search: Milvus Lite embedded and a Milvus Lite server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from faceprint.search import FaceStore  # noqa: E402
from tests.search.conftest import tiny_weights  # noqa: E402, F401 - a fixture


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def lite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`milvus-lite server` bound to 127.0.0.1 (its default is every interface)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("milvus")
    exe = shutil.which("milvus-lite") or str(Path(sys.executable).parent / "milvus-lite")
    proc = subprocess.Popen([exe, "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("milvus-lite server did not start")
        from tests.netstat import listening

        bound = [addr for addr, p, _ in listening() if p == port]
        assert bound and all(addr == "127.0.0.1" for addr in bound), bound  # seen, and loopback only
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def _pair(tmp_path: Path, uri: str, n: int = 400) -> tuple[FaceStore, FaceStore, np.ndarray, list[str]]:
    vecs = _unit(n, 32, 0)
    idents = [f"person {i % 13}" for i in range(n)]
    stores = []
    for name, vectors in (("faiss", None), ("milvus", {"backend": "milvus", "uri": uri, "collection": f"t_{os.getpid()}_{time.time_ns()}"})):
        store = FaceStore(tmp_path / name, create=True, model_id="m", dim=32, kind="flat", vectors=vectors)
        store.add(vecs, [f"p{i}" for i in range(n)], idents, [None] * n)
        stores.append(store)
    return stores[0], stores[1], vecs, idents


def _same_hits(a: list, b: list) -> None:
    for ha, hb in zip(a, b):
        assert [m.face.path for m in ha] == [m.face.path for m in hb]
        np.testing.assert_allclose([m.distance for m in ha], [m.distance for m in hb], atol=1e-4)


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_milvus_equals_faiss_exact_with_filter_delete_and_reopen(where: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    uri = str(tmp_path / "gallery.db") if where == "embedded" else request.getfixturevalue("lite_server")
    faiss_store, milvus_store, vecs, idents = _pair(tmp_path, uri)
    queries = _unit(20, 32, 1)
    _same_hits(faiss_store.search(queries, k=10), milvus_store.search(queries, k=10))  # top-10 equal to exact
    only = milvus_store.search(queries, k=10, identity="person 3")
    assert all(m.face.identity == "person 3" for hits in only for m in hits)
    _same_hits(faiss_store.search(queries, k=10, identity="person 3"), only)
    scores = queries @ vecs[[i for i, p in enumerate(idents) if p == "person 3"]].T  # brute force within the identity
    np.testing.assert_allclose([h[0].distance for h in only], 2 - 2 * scores.max(1), atol=1e-4)
    for store in (faiss_store, milvus_store):
        assert store.remove(identity="person 5") == len([p for p in idents if p == "person 5"])
    after = milvus_store.search(queries, k=10)
    assert all(m.face.identity != "person 5" for hits in after for m in hits)
    _same_hits(faiss_store.search(queries, k=10), after)
    assert milvus_store.searchable() == len(milvus_store)
    milvus_store.close()
    if where == "embedded":
        from faceprint.search.milvus import MilvusMirror

        request.getfixturevalue("monkeypatch").setattr(MilvusMirror, "rebuild", lambda *a: pytest.fail("rebuilt"))
        again = FaceStore(tmp_path / "milvus")  # reopens the same collection: current, not rebuilt
        _same_hits(faiss_store.search(queries, k=10), again.search(queries, k=10))
        again.close()


def test_rows_a_killed_writer_never_sent_reach_milvus_on_reopen_and_nothing_else_is_sent(tmp_path: Path,
                                                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from faceprint.search.milvus import MilvusMirror, MilvusVectors

    faiss_store, milvus_store, _, _ = _pair(tmp_path, str(tmp_path / "gallery.db"), n=120)
    milvus_store.vectors.client.delete(list(range(1, 60)))  # lose rows behind SQLite's back, logged as unsent ...
    import sqlite3

    killed = sqlite3.connect(tmp_path / "milvus" / "faces.sqlite")  # ... as a writer killed between its commit and
    with killed:  # its Milvus write leaves them
        killed.executemany("INSERT INTO vector_log VALUES (?)", [(i,) for i in range(1, 60)])
    killed.close()
    assert milvus_store.vectors.count() == 61  # the rows really are gone from Milvus
    milvus_store.vectors.client.close()
    monkeypatch.setattr(MilvusMirror, "rebuild", lambda *a: pytest.fail("a full refill"))
    sent = []
    real = MilvusVectors.upsert
    monkeypatch.setattr(MilvusVectors, "upsert", lambda self, ids, *a, **k: (sent.extend(ids), real(self, ids, *a, **k)))
    again = FaceStore(tmp_path / "milvus")
    assert sorted(sent) == list(range(1, 60))  # exactly the logged rows
    assert again.searchable() == 120
    queries = _unit(5, 32, 2)
    _same_hits(faiss_store.search(queries, k=10), again.search(queries, k=10))
    again.close()


def test_a_write_that_never_reached_milvus_is_not_hidden_by_a_later_one(tmp_path: Path, lite_server: str) -> None:
    """Process A commits but its Milvus write fails (or it dies); process B then writes. B must not mark the
    collection current without A's rows: the next search rebuilds, and A's faces are found."""
    spec = {"backend": "milvus", "uri": lite_server, "collection": f"two_{time.time_ns()}"}
    a = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=32, kind="flat", vectors=spec)
    a.add(_unit(10, 32, 0), [f"base{i}" for i in range(10)], ["base"] * 10, [None] * 10)
    b = FaceStore(tmp_path / "ix")  # a second writer on the same index and collection
    lost = _unit(5, 32, 1)

    def fail(*args, **kw):  # type: ignore[no-untyped-def]
        raise ConnectionError("Milvus went away")

    a.vectors.client.upsert = fail  # A's rows reach SQLite only
    a.add(lost, [f"a{i}" for i in range(5)], ["A"] * 5, [None] * 5)
    assert len(b.db.execute("SELECT id FROM vector_log").fetchall()) == 5  # A's rows stay logged as unsent
    b.add(_unit(5, 32, 2), [f"b{i}" for i in range(5)], ["B"] * 5, [None] * 5)  # B's drain sends A's rows too
    assert b.db.execute("SELECT id FROM vector_log").fetchall() == []
    hits = b.search(lost, k=1)
    assert [h[0].face.path for h in hits] == [f"a{i}" for i in range(5)] and all(h[0].distance < 1e-4 for h in hits)
    assert b.searchable() == 20
    a.close()
    b.close()


def test_a_rebuild_swaps_collections_and_drops_the_old_one(tmp_path: Path, lite_server: str, tiny_faces: Path,
                                                           tiny_weights: str) -> None:
    from pymilvus import MilvusClient

    from faceprint.search import build_index, open_index

    from tests.search.test_swap import _galleries

    first, second = _galleries(tiny_faces, tmp_path)
    where = {"backend": "milvus", "uri": lite_server}
    build_index(first, tmp_path / "ix", {"weights": tiny_weights}, detect=False, vectors=where)[0].close()
    live = open_index(tmp_path / "ix")
    old_collection = live.store.meta["vectors"]["collection"]
    probe = sorted(sorted(second.iterdir())[1].iterdir())[0]
    build_index(second, tmp_path / "ix", {"weights": tiny_weights}, detect=False, force=True, vectors=where)[0].close()
    hit = live.query(probe, k=1)[0].matches[0]  # the live index follows into the new collection
    assert hit.face.path == str(probe) and hit.distance < 1e-4
    client = MilvusClient(lite_server)
    assert not client.has_collection(old_collection) and client.has_collection(live.store.meta["vectors"]["collection"])
    client.close()
    live.close()
