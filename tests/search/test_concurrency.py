"""One process, several threads: searches while another thread adds and removes, and readers beside an open write."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from faceprint.search import FaceStore


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("kind", "extra"), [("flat", 400), ("ivf", 400), ("hnsw", 30)])
def test_searches_beside_adds_and_removes_return_only_true_distances(kind: str, extra: int, tmp_path: Path) -> None:
    """Four threads search while one adds and removes single faces: no crash, and every hit's distance is the
    distance to the vector stored under the returned face (a search on a structure being changed returns others).
    Flat and IVF change in place; HNSW is rebuilt beside the one being searched at every removal."""
    n, dim = 3000, 64
    pool = _unit(n + extra, dim, 0)
    truth = {f"p{i}": pool[i] for i in range(n + extra)}
    store = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=dim, kind=kind)
    ids = store.add(pool[:n], [f"p{i}" for i in range(n)], [None] * n, [None] * n)
    store.sync()
    queries = pool[::23] + 0.05 * _unit(len(pool[::23]), dim, 1)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)  # unit queries: a distance is 2 - 2 * inner product
    errors: list[BaseException] = []
    bad: list[tuple[str, float, float]] = []
    counts = {"searches": 0, "during_writes": 0, "writes": 0}
    writing, done = threading.Event(), threading.Event()

    def search() -> None:
        rng = np.random.default_rng(threading.get_ident() % 2**32)
        while not done.is_set():
            q = queries[rng.integers(0, len(queries), 8)]
            during = writing.is_set()
            try:
                for qi, hits in zip(q, store.search(q, k=5)):
                    bad.extend((h.face.path, h.distance, float(((truth[h.face.path] - qi) ** 2).sum())) for h in hits
                               if abs(float(((truth[h.face.path] - qi) ** 2).sum()) - h.distance) > 1e-4)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)
                return
            counts["searches"] += 1
            counts["during_writes"] += during

    def write() -> None:
        rng = np.random.default_rng(7)
        live = list(ids)
        try:
            for i in range(extra):  # bounded: one add and one removal per round
                writing.set()
                live += store.add(pool[n + i : n + i + 1], [f"p{n + i}"], [None], [None])
                store.remove(ids=[live.pop(int(rng.integers(0, len(live))))])
                writing.clear()
                counts["writes"] += 2
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=search) for _ in range(4)] + [threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors and bad == []
    assert counts["writes"] == 2 * extra and counts["searches"] > 50 and counts["during_writes"] > 10  # they overlapped
    assert len(store) == n and store.searchable() == n
    store.close()


def test_a_reader_never_sees_a_write_still_open_in_another_thread(tmp_path: Path) -> None:
    store = FaceStore(tmp_path / "ix", create=True, model_id="m", dim=8, kind="flat")
    store.add(_unit(3, 8, 0), ["a", "b", "c"], ["Ann", "Ann", "Bob"], [None] * 3)
    inside, release = threading.Event(), threading.Event()
    added: list[int] = []

    def writer() -> None:
        def hold(ids: list[int]) -> None:
            added.extend(ids)
            store.set_meta({"threshold": 0.5})  # joins the open transaction
            inside.set()
            assert release.wait(60)

        store.add(_unit(2, 8, 1), ["d", "e"], ["Cy", "Cy"], [None] * 2, inside=hold)

    t = threading.Thread(target=writer)
    t.start()
    assert inside.wait(60)  # the other thread's transaction is open, its rows inserted
    try:
        assert added and store.faces(added) == {}
        assert len(store) == 3 and store.identities() == {"Ann": 2, "Bob": 1} and store.meta["threshold"] is None
        assert {m.face.path for m in store.search(_unit(2, 8, 1), k=5)[0]} <= {"a", "b", "c"}
        assert store.thumb_path(added[0]) is None
    finally:
        release.set()
        t.join(60)
    assert len(store) == 5 and store.identities()["Cy"] == 2 and store.meta["threshold"] == 0.5  # committed: seen
    assert store.search(_unit(1, 8, 1), k=1)[0][0].face.path == "d"
    store.close()
