"""A persistent face index: SQLite holds every face (metadata and vector), FAISS is a derived search structure.

Layout of an index folder: ``faces.sqlite`` (the source of truth, one transaction per add/remove, so a
kill mid-way rolls back and leaves the previous index), ``vectors-<generation>.faiss`` with ``vectors.json``
naming it (written atomically after each commit; rebuilt from SQLite when missing or stale; every open
store catches up when the generation moves, whichever process wrote), ``write.lock`` (one writer at a
time across processes) and ``thumbs/<id>.jpg`` face thumbnails.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.faults import fault_point
from faceprint.io import atomic_path
from faceprint.search.lock import WriterBusyError, writer_lock

__all__ = ["IndexBusyError", "Face", "FaceStore", "IndexError_", "IndexReplacedError", "Match", "KINDS"]

KINDS = ("auto", "flat", "ivf", "hnsw")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    identity TEXT,
    box TEXT,
    model_id TEXT NOT NULL,
    added_at REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_path ON faces(path);
CREATE INDEX IF NOT EXISTS faces_identity ON faces(identity);
"""


class IndexError_(ValueError):  # noqa: N801 - IndexError is a builtin
    """The index is missing, damaged, or was built with another model."""


class IndexBusyError(IndexError_):
    """Another process kept the index's writer lock past the timeout (a server answers 503)."""


class IndexReplacedError(IndexError_):
    """The folder now holds an index this process cannot follow (another model or detection settings): restart."""


@dataclass(frozen=True)
class Face:
    """One indexed face."""

    id: int
    path: str
    identity: str | None
    box: list[float] | None
    added_at: float


@dataclass(frozen=True)
class Match:
    """A search hit: the face and its squared L2 distance to the query (unit vectors: 2 − 2·cos)."""

    face: Face
    distance: float


class FaceStore:
    """Open (or create with ``create=True``) the index folder ``root``."""

    def __init__(self, root: str | Path, create: bool = False, model_id: str | None = None, dim: int | None = None,
                 embedder: dict[str, Any] | None = None, kind: str = "auto", vectors: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.lock_timeout = 60.0  # seconds a writer waits for another process's write to end
        db = self.root / "faces.sqlite"
        if not create and not db.is_file():
            raise IndexError_(f"{self.root} is not a faceprint index (no faces.sqlite); build one with `faceprint index build`")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "thumbs").mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._closed = False
        self._milvus: Any = None  # set from the metadata below
        self.db, self._ident = _connect(db), _file_id(db)
        if create and not self.meta:
            if model_id is None or dim is None:
                raise IndexError_("a new index needs the model id and the embedding dimension")
            if kind not in KINDS:
                raise IndexError_(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
            self._set_meta({"model_id": model_id, "dim": dim, "embedder": embedder or {}, "kind": kind,
                            "generation": 0, "threshold": None, "created_at": time.time(),
                            "vectors": vectors or {"backend": "faiss"}})
        m = self.meta
        if not m:
            raise IndexError_(f"{self.root}: index has no metadata")
        if model_id is not None and model_id != m["model_id"]:
            raise IndexError_(f"{self.root} was built with model {m['model_id'][:12]}… ({m['embedder']}); "
                              f"this model is {model_id[:12]}…: use the same weights or build a new index")
        self.dim, self.kind, self.model_id = int(m["dim"]), str(m["kind"]), str(m["model_id"])
        self._uid = repr(m.get("created_at"))  # which index this is: generations of a replaced index start again
        self._faiss, self._gen, self._max_id, self._stale = None, -1, 0, False
        self._milvus = _milvus(m.get("vectors") or {}, self.dim)
        self._load_faiss()

    def _replaced(self) -> bool:
        """Whether ``root`` now holds another database than the open one (`index build --force` swapped it)."""
        ident = _file_id(self.root / "faces.sqlite")
        return ident is not None and ident != self._ident

    def _follow(self) -> None:
        """After a swap, reopen on the new index when it is of the same model (else refuse: it needs a restart)."""
        if not self._replaced():
            return
        with self._lock:
            if not self._replaced():
                return
            path = self.root / "faces.sqlite"
            db, ident = _connect(path), _file_id(path)
            rows = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta").fetchall()}
            old = self.meta
            same = [rows.get("model_id"), rows.get("dim")] == [self.model_id, self.dim] and all(
                (rows.get("embedder") or {}).get(k) == (old.get("embedder") or {}).get(k) for k in ("detect", "margin"))
            if not same:
                db.close()
                raise IndexReplacedError(f"{self.root} was replaced by an index of another model or other detection "
                                         "settings; restart to serve it")
            # the old connection is not closed here: other threads may be reading through it (it closes when the
            # last of them lets go of it)
            self.db, self._ident = db, ident
            self.kind, self._uid = str(rows["kind"]), repr(rows.get("created_at"))
            self._faiss, self._gen, self._max_id, self._stale = None, -1, 0, False
            old, self._milvus = self._milvus, _milvus(rows.get("vectors") or {}, self.dim)  # the new index's collection
            if old is not None:
                old.close()
            self._load_faiss()

    # metadata -------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        rows = self.db.execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def _set_meta(self, values: dict[str, Any], in_txn: bool = False) -> None:
        rows = [(k, json.dumps(v)) for k, v in values.items()]
        if in_txn:
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
            return
        with self._txn():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    def set_threshold(self, threshold: float) -> None:
        """The same/different verdict threshold (squared L2)."""
        self._set_meta({"threshold": float(threshold)})

    # transactions ---------------------------------------------------------------------------
    def transaction(self, vectors: bool = False) -> contextlib.AbstractContextManager[None]:
        """A write transaction for tables beside the faces (a photo library's people): all or nothing, one writer
        across processes. ``vectors``: it changes what the vector backend holds (identities), so a Milvus
        collection is refilled before the next search."""
        return self._txn(vectors=vectors)

    @contextlib.contextmanager
    def _txn(self, mirror: Any = None, vectors: bool = True) -> Iterator[None]:
        """One SQLite write transaction (rolled back on any error), serialized across threads and processes.

        ``mirror``: with a Milvus index, the change to apply there after the commit, still under the writer lock;
        ``vectors=False``: nothing the vectors' backend holds changes (its current mark stays)."""
        with self._writer(), self._lock:  # the file lock first: a waiting writer never holds up this process's reads
            self._follow()  # a swapped-in index: write into it, never into the one swapped out
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # e.g. a writer of an older faceprint without the lock
                raise IndexError_(f"{self.root}: the index database is busy or unwritable ({exc})") from None
            was_current = self._milvus is not None and self._mirror_current()  # read inside this transaction
            try:
                yield
                if self._milvus is not None and vectors:  # committed with the rows: Milvus is behind until marked below
                    self._set_meta({"mirror_generation": -1}, in_txn=True)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            if self._milvus is not None and mirror is not None:
                self._mirror_apply(mirror, was_current)

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        try:
            with writer_lock(self.root, self.lock_timeout):
                yield
        except WriterBusyError as exc:
            raise IndexBusyError(str(exc)) from None

    # faces ----------------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, paths: list[str], identities: list[str | None],
            boxes: list[list[float] | None], thumbs: list[bytes | None] | None = None, sync: bool = True,
            unique_paths: bool = False, inside: Callable[[list[int]], None] | None = None) -> list[int]:
        """Add faces in one transaction; returns their ids. Nothing is added if anything fails.

        ``sync=False`` leaves the FAISS file stale (a bulk build syncs once at the end; a reopen rebuilds it).
        ``unique_paths``: faces of an image path already in the index (another process may have added it since
        the caller looked) are dropped, checked inside the transaction. ``inside(ids)`` runs in the transaction after
        the rows are inserted (a photo library records its own rows there: all commit together or none).
        """
        vectors = np.ascontiguousarray(vectors, np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(paths):
            raise IndexError_(f"expected ({len(paths)}, {self.dim}) vectors, got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise IndexError_("vectors contain NaN or inf")
        now, ids = time.time(), []
        thumbs = list(thumbs) if thumbs is not None else [None] * len(paths)
        with self._txn(lambda: self._milvus.upsert(ids, vectors, identities)):  # type: ignore[union-attr]
            if unique_paths:
                there = {r[0] for r in self.db.execute("SELECT DISTINCT path FROM faces WHERE path IN "
                                                       "(SELECT value FROM json_each(?))", (json.dumps(list(paths)),))}
                keep = [i for i, p in enumerate(paths) if p not in there]
                vectors, paths = vectors[keep], [paths[i] for i in keep]
                identities, boxes, thumbs = [identities[i] for i in keep], [boxes[i] for i in keep], [thumbs[i] for i in keep]
            for v, p, ident, box in zip(vectors, paths, identities, boxes):
                cur = self.db.execute(
                    "INSERT INTO faces (path, identity, box, model_id, added_at, vector) VALUES (?, ?, ?, ?, ?, ?)",
                    (p, ident, json.dumps(box) if box is not None else None, self.model_id, now, v.tobytes()))
                ids.append(int(cur.lastrowid))
            if inside is not None:
                inside(ids)
            fault_point("store.add.rows")  # rows inserted, transaction open
            for i, thumb in zip(ids, thumbs):
                if thumb is None:  # an id of a killed add can come back: never show its leftover thumbnail
                    (self.root / "thumbs" / f"{i}.jpg").unlink(missing_ok=True)
                    continue
                with atomic_path(self.root / "thumbs" / f"{i}.jpg") as tmp:
                    tmp.write_bytes(thumb)
                fault_point("store.add.thumbs")  # some thumbnails written, transaction open
            self._bump()
        if self._milvus is None and sync:
            self.refresh()  # catches up incrementally: this add's rows (and any other process's) go into FAISS
        return ids

    def remove(self, ids: list[int] | None = None, path: str | None = None, identity: str | None = None,
               inside: Callable[[list[int]], None] | None = None) -> int:
        """Remove faces by id, image path or identity; returns how many were removed (``inside(ids)`` runs in the
        transaction, as for ``add``)."""
        found: list[int] = []
        with self._txn(lambda: self._milvus.delete(found)):  # type: ignore[union-attr]
            found += [r[0] for r in self.db.execute(
                "SELECT id FROM faces WHERE id IN (SELECT value FROM json_each(?)) OR path = ? OR identity = ?",
                (json.dumps(ids or []), path, identity))]
            self.db.execute("DELETE FROM faces WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(found),))
            if inside is not None:
                inside(found)
            self._bump()
        for i in found:
            (self.root / "thumbs" / f"{i}.jpg").unlink(missing_ok=True)
        if self._milvus is not None:
            return len(found)
        with self._lock:  # an exact (flat) structure drops ids in place; IVF and HNSW behind an id map cannot
            # (FAISS's id map shifts its table while their internal ids stay put), so they are rebuilt
            import faiss

            inner = faiss.downcast_index(self._faiss.index) if self._faiss is not None else None
            if isinstance(inner, faiss.IndexFlat) and found:
                self._faiss.remove_ids(np.asarray(found, np.int64))
            elif found:
                self._gen = -1
        self.refresh()
        return len(found)

    def _bump(self) -> None:
        self._set_meta({"generation": self._generation() + 1}, in_txn=True)

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def faces(self, ids: list[int], db: sqlite3.Connection | None = None) -> dict[int, Face]:
        rows = (db or self.db).execute("SELECT id, path, identity, box, added_at FROM faces WHERE id IN (SELECT value FROM json_each(?))",
                               (json.dumps([int(i) for i in ids]),)).fetchall()
        return {r[0]: Face(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, r[4]) for r in rows}

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """(ids, vectors, identities) of every face."""
        rows = self.db.execute("SELECT id, vector, identity FROM faces ORDER BY id").fetchall()
        ids, vecs = self._decode(rows)
        return ids, vecs, [r[2] for r in rows]

    def _decode(self, rows: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of rows whose first two columns are id and vector bytes."""
        return np.array([r[0] for r in rows], dtype=np.int64), self.unpack(r[1] for r in rows)

    def unpack(self, blobs: Iterable[bytes]) -> np.ndarray:
        """The (n, dim) float32 vectors of ``vector`` column values, one row each."""
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, self.dim)

    def identities(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT identity, COUNT(*) FROM faces WHERE identity IS NOT NULL GROUP BY identity"))

    def thumb_path(self, face_id: int) -> Path | None:
        """The thumbnail of a face in the database (a removed face's leftover file is not served)."""
        self._follow()
        if self.db.execute("SELECT 1 FROM faces WHERE id = ?", (int(face_id),)).fetchone() is None:
            return None
        path = self.root / "thumbs" / f"{int(face_id)}.jpg"
        return path if path.is_file() else None

    # FAISS ----------------------------------------------------------------------------------
    def _snapshot(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(ids, vectors, generation) read in one transaction, so the vectors are exactly that generation's."""
        with self._lock:
            self.db.execute("BEGIN")
            try:
                ids, vecs, _ = self.all_vectors()
                gen = self._generation()
            finally:
                self.db.execute("COMMIT")
        return ids, vecs, gen

    def _db_max_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0])

    def _generation(self) -> int:
        return int(json.loads(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]))

    def _load_faiss(self) -> None:
        """The FAISS file of the database's generation (named after it, so it never pairs with another), else a
        rebuild from the database."""
        import faiss

        if self._milvus is not None:  # the derived structure is the Milvus collection: rebuilt when stale
            self._mirror_check()
            return
        gen, tag = self._generation(), self.root / "vectors.json"
        try:
            named = json.loads(tag.read_text()) if tag.is_file() else {}
            path = self.root / str(named.get("file", ""))
            if named.get("uid") == self._uid and named.get("generation") == gen and named.get("file") and path.is_file():
                self._faiss, self._gen = faiss.read_index(str(path)), gen
                self._max_id, self._stale = int(named.get("max_id", self._db_max_id())), False
                return
        except (RuntimeError, ValueError, OSError):
            pass  # stale, damaged or removed by a newer writer: rebuilt from the database below
        self.sync()

    def refresh(self) -> None:
        """Catch up with adds and removes made since the FAISS structure was loaded (by this or another process):
        rows added since are added in place; if anything else changed (a removal elsewhere), rebuild; a swapped-in
        index is opened."""
        self._follow()
        if self._milvus is not None:
            self._mirror_check()
            return
        if self._generation() == self._gen:
            return
        with self._lock:
            self.db.execute("BEGIN")
            try:
                gen = self._generation()
                rows = self.db.execute("SELECT id, vector FROM faces WHERE id > ? ORDER BY id", (self._max_id,)).fetchall()
                total = len(self)
            finally:
                self.db.execute("COMMIT")
            if gen == self._gen:
                return
            if self._faiss is not None and self._gen >= 0 and self._faiss.ntotal + len(rows) == total:
                if rows:
                    ids, vecs = self._decode(rows)
                    self._faiss.add_with_ids(vecs, ids)
                    self._max_id = int(ids[-1])
                self._gen, self._stale = gen, True
                return
            self._load_faiss()

    def sync(self) -> None:
        """Rebuild the FAISS structure from one snapshot of the database. Write it as ``vectors-<generation>.faiss``
        and point ``vectors.json`` at it when no other process is writing and no newer file is there."""
        from faceprint.search.ann import build_ann

        if self._milvus is not None:
            self._mirror_check()
            return
        with self._lock:
            ids, vecs, gen = self._snapshot()
            index = build_ann(vecs, ids, self.kind)
            max_id = int(ids.max()) if len(ids) else 0
            self._faiss, self._gen, self._max_id = index, gen, max_id
            self._stale = not self._write_faiss(index, gen, max_id)

    def _write_faiss(self, index, gen: int, max_id: int) -> bool:  # type: ignore[no-untyped-def]
        import faiss

        try:
            with writer_lock(self.root, timeout=0.0, quiet=True):
                if self._replaced():
                    return False  # the folder holds another index now: its file is not ours to write
                tag = self.root / "vectors.json"
                named = json.loads(tag.read_text()) if tag.is_file() else {}
                if named.get("uid") == self._uid and int(named.get("generation", -1)) > gen:
                    return False  # a newer file is already there
                name = f"vectors-{gen}.faiss"
                with atomic_path(self.root / name) as tmp:
                    faiss.write_index(index, str(tmp))
                with atomic_path(tag) as tmp:
                    tmp.write_text(json.dumps({"uid": self._uid, "generation": gen, "file": name, "max_id": max_id,
                                               "count": int(index.ntotal), "kind": self.kind}))
                for old in self.root.glob("vectors-*.faiss"):
                    if old.name != name:
                        old.unlink(missing_ok=True)
                return True
        except (WriterBusyError, ValueError, OSError):
            return False  # another process is writing: keep this in memory, the file is left to it

    def search(self, queries: np.ndarray, k: int = 5, identity: str | None = None) -> list[list[Match]]:
        """The ``k`` nearest faces of each query vector (squared L2 on unit vectors), only ``identity``'s if given."""
        q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        if q.shape[1] != self.dim:
            raise IndexError_(f"query dimension {q.shape[1]} != index dimension {self.dim}")
        self.refresh()
        with self._lock:
            index, db, milvus = self._faiss, self.db, self._milvus  # one index's set: never mixed across a swap
        if milvus is not None:
            sims, ids = milvus.search(q, k + 8, identity)  # spare results, as below
        elif identity is not None:  # exact within the identity, whatever the structure (its faces are few)
            sims, ids = self._identity_search(q, k, identity, db)
        else:
            if index is None or index.ntotal == 0:
                return [[] for _ in q]
            # a few spare results: approximate structures after in-place removals can leave empty (-1) slots
            sims, ids = index.search(q, min(k + 8, int(index.ntotal)))
        faces = self.faces([int(i) for i in ids.ravel() if i >= 0], db)
        return [[Match(faces[int(i)], float(max(2 - 2 * s, 0.0))) for s, i in zip(srow, irow) if int(i) in faces][:k]
                for srow, irow in zip(sims, ids)]

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(squared distances, ids) of the ``k`` nearest faces of each query, nearest first: fewer columns when the
        index holds fewer faces, and id −1 with distance inf where an approximate structure leaves a slot empty. No
        face rows are read (for callers that look ids up in bulk themselves)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        if q.shape[1] != self.dim:
            raise IndexError_(f"query dimension {q.shape[1]} != index dimension {self.dim}")
        if not self.db.in_transaction:  # inside a write the structure is used as it is: a catch-up would read this
            self.refresh()  # transaction's own uncommitted rows into it
        with self._lock:
            index, milvus = self._faiss, self._milvus
        if milvus is not None:
            sims, ids = milvus.search(q, k)
        elif index is None or index.ntotal == 0 or k <= 0:
            sims, ids = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        else:
            sims, ids = index.search(q, min(k, int(index.ntotal)))
        ids = np.asarray(ids, np.int64).reshape(len(q), -1)
        d = np.where(ids >= 0, np.maximum(2 - 2 * np.asarray(sims, np.float64).reshape(len(q), -1), 0.0), np.inf)
        return d, ids

    def searchable(self) -> int:
        """Faces a search sees now: the FAISS structure's size after catching up with the database."""
        self.refresh()
        if self._milvus is not None:
            return self._milvus.count()
        with self._lock:
            return 0 if self._faiss is None else int(self._faiss.ntotal)

    def info(self) -> dict[str, Any]:
        m = self.meta
        return {"root": str(self.root), "faces": len(self), "identities": len(self.identities()), "dim": self.dim,
                "kind": self.kind, "model_id": self.model_id, "embedder": m.get("embedder"),
                "threshold": m.get("threshold"), "generation": m.get("generation")}

    # Milvus ---------------------------------------------------------------------------------
    def _identity_search(self, q: np.ndarray, k: int, identity: str, db: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products against one identity's stored vectors: (scores, ids), best first."""
        ids, vecs = self._decode(db.execute("SELECT id, vector FROM faces WHERE identity = ? ORDER BY id", (identity,)).fetchall())
        if not len(ids):
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        scores = q @ vecs.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), ids[order]

    def _mirror_apply(self, change: Any, was_current: bool) -> None:
        """Apply a committed change to Milvus and mark the collection current (the caller holds the writer lock) if
        it was current before this write. A failure, or an earlier write that never reached Milvus, leaves the mark
        behind: the next open or search rebuilds the collection from SQLite."""
        import logging

        try:
            change()
        except Exception:  # noqa: BLE001 - the rows are committed; Milvus catches up by a rebuild
            logging.getLogger(__name__).warning("Milvus write failed; the collection will be rebuilt", exc_info=True)
            return
        if was_current:
            self._set_meta({"mirror_generation": self._generation()}, in_txn=True)

    def _mirror_current(self) -> bool:
        m = self.meta
        return m.get("mirror_generation") == m.get("generation")

    def _mirror_check(self) -> None:
        if not self._mirror_current():
            self._mirror_rebuild()

    def _mirror_rebuild(self) -> None:
        """Refill the collection from SQLite under the writer lock (a write in progress finishes first and is then
        current: nothing to do)."""
        with self._writer(), self._lock:
            if self._mirror_current():
                return
            ids, vecs, gen = self._snapshot()
            idents = dict(self.db.execute("SELECT id, identity FROM faces").fetchall())
            self._milvus.clear()  # type: ignore[union-attr]
            self._milvus.upsert(ids.tolist(), vecs, [idents[int(i)] for i in ids])  # type: ignore[union-attr]
            self._set_meta({"mirror_generation": gen}, in_txn=True)

    def close(self) -> None:
        """Write the FAISS file if adds were applied in memory since it was written (the next open loads it), close.
        Closing again does nothing (a server's shutdown closes the index its caller may close too)."""
        if self._closed:
            return
        self._closed = True
        if self._stale and not self._replaced() and self._gen == self._generation():
            self.sync()
        if self._milvus is not None:
            self._milvus.close()
        self.db.close()


def _connect(db: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise IndexError_(f"{db}: damaged index database ({exc})") from exc
    return conn


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _milvus(spec: dict[str, Any], dim: int) -> Any:
    """The Milvus collection named by the index's ``vectors`` metadata, or None for the embedded FAISS default."""
    if spec.get("backend", "faiss") == "faiss":
        return None
    if spec["backend"] != "milvus":
        raise IndexError_(f"unknown vector backend {spec['backend']!r} (faiss or milvus)")
    from faceprint.search.milvus import MilvusVectors

    return MilvusVectors(spec["uri"], spec.get("collection", "faceprint_faces"), dim, index_type=spec.get("index", "FLAT"))
