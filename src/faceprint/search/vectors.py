"""The vectors half of a face index: one interface (``Vectors``) over a derived search structure, and FAISS behind it.

A structure catches up with the committed rows (``catch_up``), takes a committed write (``written``), searches,
rebuilds from the rows and says whether it is current. Each backend owns its concurrency. FAISS: a search holds a
readers–writer lock in read mode for its whole run, every change to the structure holds it in write mode, so no
search ever runs on a structure being changed; catch-ups and writes are serialized by ``mutex``. The structure is
saved as ``vectors-<generation>.faiss`` with ``vectors.json`` naming it, and ``close()`` saves what it holds (no
rebuild).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from faceprint.io import atomic_path
from faceprint.search.lock import WriterBusyError, writer_lock
from faceprint.search.rows import FaceRows

__all__ = ["FaissVectors", "RWLock", "Vectors"]


class Vectors(Protocol):
    """What the store needs of a vector backend."""

    mutex: Any  # held by the store from a write's BEGIN until ``written`` returns (no catch-up interleaves)

    def open(self, rows: FaceRows) -> None: ...
    def current(self, rows: FaceRows) -> bool: ...
    def catch_up(self, rows: FaceRows) -> None: ...
    def written(self, rows: FaceRows, before: int, removed: list[int], sync: bool) -> None: ...
    def rebuild(self, rows: FaceRows) -> None: ...
    def search(self, q: np.ndarray, k: int, identity: str | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def count(self) -> int: ...
    def close(self, rows: FaceRows | None) -> None: ...


class RWLock:
    """Many readers or one writer; a waiting writer holds off new readers (searches never starve a write)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers, self._writer, self._waiting = 0, False, 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class FaissVectors:
    """A FAISS structure (flat, IVF or HNSW behind an id map) over the rows of one index folder."""

    def __init__(self, root: Path, dim: int, kind: str, uid: str) -> None:
        self.root, self.dim, self.kind, self.uid = root, dim, kind, uid
        self.mutex = threading.RLock()
        self._rw = RWLock()
        self._index: Any = None
        self._gen, self._max_id, self._unsaved = -1, 0, False
        self._saved, self._saved_count, self._must_save = -1, 0, False  # the file's generation and size; a rebuild or
        # a removal since it was saved (a catch-up on the next open could not replay it)

    def open(self, rows: FaceRows) -> None:
        """The saved file of this index (named after its generation, so it never pairs with another) caught up with
        the rows added since it was saved; else a rebuild."""
        import faiss

        with self.mutex:
            gen = rows.generation()
            try:
                named = _read_json(self.root / "vectors.json")
                path = self.root / str(named.get("file", ""))
                saved = int(named.get("generation", -1))
                if named.get("uid") == self.uid and 0 <= saved <= gen and named.get("file") and path.is_file():
                    index = faiss.read_index(str(path))
                    with self._rw.write():
                        self._index, self._gen, self._saved, self._saved_count = index, saved, saved, int(index.ntotal)
                        self._max_id, self._unsaved, self._must_save = int(named["max_id"]), False, False
                    self.catch_up(rows)  # rows added since are added in place; a removal since means a rebuild
                    return
            except (RuntimeError, ValueError, OSError, KeyError):
                pass  # damaged or removed by a newer writer: rebuilt from the rows below
            self.rebuild(rows)
        self.save(rows)  # outside the mutex: the file lock is never taken under an in-process lock

    def current(self, rows: FaceRows) -> bool:
        return rows.generation() == self._gen

    def catch_up(self, rows: FaceRows) -> None:
        """Rows added since (by this or another process) are added in place; anything else changed: rebuild. When a
        write of this process holds ``mutex`` (it brings the structure up to date itself once it commits), nothing
        is waited for: the search runs on the structure as it is."""
        if self.current(rows) or not self.mutex.acquire(blocking=False):
            return
        try:
            with rows.reading() as db:
                gen = rows.generation()
                if 0 <= gen <= self._gen:  # current, or a reader's older snapshot: never moves the structure back
                    return
                new = db.execute("SELECT id, vector FROM faces WHERE id > ? ORDER BY id", (self._max_id,)).fetchall()
                total = rows.count()
            if self._index is None or self._gen < 0 or self._index.ntotal + len(new) != total:
                self.rebuild(rows)
                return
            ids, vecs = np.array([r[0] for r in new], np.int64), rows.unpack(r[1] for r in new)
            with self._rw.write():
                if len(ids):
                    self._index.add_with_ids(vecs, ids)
                    self._max_id = int(ids[-1])
                self._gen, self._unsaved = gen, True
        finally:
            self.mutex.release()

    def written(self, rows: FaceRows, before: int, removed: list[int], sync: bool) -> None:
        """After a committed write (``mutex`` held since its BEGIN): removals of an exact or IVF structure in place,
        the rest by a catch-up (``sync=False``: left for later, a bulk build syncs once at the end)."""
        import faiss

        if removed and self._gen == before:
            top = faiss.downcast_index(self._index) if self._index is not None else None
            inner = faiss.downcast_index(top.index) if isinstance(top, faiss.IndexIDMap2) else top
            # exact and IVF structures drop ids in place; HNSW (and IVF behind an id map, as older indexes saved it,
            # whose internal ids would shift) is rebuilt
            if isinstance(top, faiss.IndexIVF) or isinstance(inner, faiss.IndexFlat):
                with self._rw.write():  # the catch-up below adds what the same transaction added, and moves _gen
                    self._index.remove_ids(np.asarray(removed, np.int64))
                    self._unsaved = self._must_save = True
            else:
                self._gen = -1
        if sync or removed:
            self.catch_up(rows)

    def rebuild(self, rows: FaceRows) -> None:
        """A new structure from one snapshot of the rows, built beside the old one and swapped in."""
        from faceprint.search.ann import build_ann

        with self.mutex:
            with rows.reading():
                ids, vecs, _ = rows.vectors_of()
                gen = rows.generation()
            index = build_ann(vecs, ids, self.kind)
            with self._rw.write():
                self._index, self._gen = index, gen
                self._max_id, self._unsaved, self._must_save = (int(ids.max()) if len(ids) else 0), True, True

    def search(self, q: np.ndarray, k: int, identity: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(inner products, ids), best first; ``k`` columns at most (fewer when the structure holds fewer)."""
        with self._rw.read():
            if self._index is None or self._index.ntotal == 0 or k <= 0:
                return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
            return self._index.search(q, min(k, int(self._index.ntotal)))

    def count(self) -> int:
        with self._rw.read():
            return 0 if self._index is None else int(self._index.ntotal)

    @property
    def unsaved(self) -> bool:
        return self._unsaved

    def save(self, rows: FaceRows) -> bool:
        """Write the structure as ``vectors-<generation>.faiss`` when it is the rows' generation, no other process is
        writing and no newer file is there; False when it was left unwritten."""
        import faiss

        try:
            with writer_lock(self.root, timeout=0.0, quiet=True), self.mutex:
                if not self._unsaved or self._gen != rows.generation():
                    return not self._unsaved
                named = _read_json(self.root / "vectors.json")
                if named.get("uid") == self.uid and int(named.get("generation", -1)) > self._gen:
                    return False  # a newer file is already there
                name = f"vectors-{self._gen}.faiss"
                with self._rw.read(), atomic_path(self.root / name) as tmp:
                    faiss.write_index(self._index, str(tmp))
                with atomic_path(self.root / "vectors.json") as tmp:
                    tmp.write_text(json.dumps({"uid": self.uid, "generation": self._gen, "file": name,
                                               "max_id": self._max_id, "count": int(self._index.ntotal), "kind": self.kind}))
                for old in self.root.glob("vectors-*.faiss"):
                    if old.name != name:
                        old.unlink(missing_ok=True)
                self._unsaved, self._must_save = False, False
                self._saved, self._saved_count = self._gen, int(self._index.ntotal)
                return True
        except (WriterBusyError, ValueError, OSError):
            return False  # another process is writing: keep this in memory, the file is left to it

    def close(self, rows: FaceRows | None) -> None:
        """Save what the structure holds when that pays (``rows`` None: the folder holds another index now, nothing is
        written). Rows only added since the file was saved are cheap to catch up with on the next open, so a few of
        them (an ``index add`` of one photo) do not rewrite a file as large as the index: the file is written after a
        removal (which a catch-up cannot replay), a rebuild, or once the rows behind it are 1,000 and 1 % of it."""
        if rows is None or not self._unsaved or self._index is None:
            return
        behind = self._index.ntotal - self._saved_count
        if self._must_save or behind >= max(1000, self._index.ntotal // 100) or behind < 0:
            self.save(rows)

    @property
    def index(self) -> Any:
        """The FAISS object (for inspection; searches go through ``search``)."""
        return self._index


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}
