"""A persistent face index in two parts: rows (``search/rows.py``, SQLite, the source of truth) and vectors (a derived
search structure behind one interface: FAISS in ``search/vectors.py``, Milvus in ``search/milvus.py``).

Layout of an index folder: ``faces.sqlite`` (one transaction per add/remove, so a kill mid-way rolls back and leaves
the previous index), ``vectors-<generation>.faiss`` with ``vectors.json`` naming it (written when the structure moved
on; rebuilt from SQLite when missing or stale; every open store catches up when the generation moves, whichever
process wrote), ``write.lock`` (one writer at a time across processes) and ``thumbs/<id>.jpg`` face thumbnails.

Locks, always taken in this order: the cross-process file lock, the vectors' ``mutex``, the rows' write lock. A
search waits for none of them: it reads through its thread's own connection and holds the structure's read lock;
its catch-up takes the ``mutex`` (FAISS) or the file lock (Milvus) only when they are free, and otherwise searches
the structure as it is, one write behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from faceprint.faults import fault_point
from faceprint.io import atomic_path
from faceprint.search.lock import WriterBusyError, writer_lock
from faceprint.search.rows import Face, FaceRows, IndexBusyError, IndexError_, IndexReplacedError, RowsReplaced, file_id
from faceprint.search.vectors import FaissVectors, Vectors

__all__ = ["IndexBusyError", "Face", "FaceStore", "IndexError_", "IndexReplacedError", "Match", "KINDS"]

KINDS = ("auto", "flat", "ivf", "hnsw")
T = TypeVar("T")


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
        self._closed = False
        self._swap = threading.Lock()  # guards only the (rows, vectors) pair itself
        rows = FaceRows(db)
        if create and not rows.meta():
            if model_id is None or dim is None:
                raise IndexError_("a new index needs the model id and the embedding dimension")
            if kind not in KINDS:
                raise IndexError_(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
            with self._writer(), rows.writing():
                if not rows.meta():
                    rows.set_meta({"model_id": model_id, "dim": dim, "embedder": embedder or {}, "kind": kind,
                                   "generation": 0, "threshold": None, "created_at": time.time(),
                                   "vectors": vectors or {"backend": "faiss"}})
        m = rows.meta()
        if not m:
            raise IndexError_(f"{self.root}: index has no metadata")
        if model_id is not None and model_id != m["model_id"]:
            raise IndexError_(f"{self.root} was built with model {m['model_id'][:12]}… ({m['embedder']}); "
                              f"this model is {model_id[:12]}…: use the same weights or build a new index")
        self.dim, self.kind, self.model_id = int(m["dim"]), str(m["kind"]), str(m["model_id"])
        rows.dim = self.dim
        self._state: tuple[FaceRows, Vectors] = (rows, self._open_vectors(rows, m))

    def _open_vectors(self, rows: FaceRows, m: dict[str, Any]) -> Vectors:
        spec = m.get("vectors") or {}
        if spec.get("backend", "faiss") == "faiss":
            vectors: Vectors = FaissVectors(rows.folder, self.dim, str(m["kind"]), repr(m.get("created_at")))
        elif spec["backend"] == "milvus":
            from faceprint.search.milvus import MilvusMirror

            vectors = MilvusMirror(rows.folder, spec, self.dim, self.lock_timeout)
        else:
            raise IndexError_(f"unknown vector backend {spec['backend']!r} (faiss or milvus)")
        vectors.open(rows)
        return vectors

    # the two parts, and following a swap ------------------------------------------------------------
    @property
    def rows(self) -> FaceRows:
        return self._parts()[0]

    @property
    def vectors(self) -> Vectors:
        return self._parts()[1]

    def _parts(self) -> tuple[FaceRows, Vectors]:
        """The current (rows, vectors) pair, after following a swapped-in index (`index build --force`) of the same
        model; another model or detection settings are refused (it needs a restart)."""
        rows, vectors = self._state
        ident = file_id(self.root / "faces.sqlite")
        if ident is None or ident == rows.ident or self._closed:
            return rows, vectors
        try:
            new = FaceRows(self.root / "faces.sqlite", self.dim)
        except (OSError, IndexError_):  # between the swap's two renames: the index swapped out answers until then
            return rows, vectors
        m, old = new.meta(), rows.meta()
        same = [m.get("model_id"), m.get("dim")] == [self.model_id, self.dim] and all(
            (m.get("embedder") or {}).get(k) == (old.get("embedder") or {}).get(k) for k in ("detect", "margin"))
        if not same:
            new.close()
            raise IndexReplacedError(f"{self.root} was replaced by an index of another model or other detection "
                                     "settings; restart to serve it")
        fresh = self._open_vectors(new, m)  # built outside any lock (it may take the file lock)
        with self._swap:
            if self._state[0].ident == new.ident:  # another thread followed first
                fresh.close(None)
                new.close()
                return self._state
            self._state, self.kind = (new, fresh), str(m["kind"])
        # the old rows are not closed: other threads may still be reading through them; their collection is
        vectors.close(None)
        return new, fresh

    def _read(self, fn: Callable[[FaceRows, Vectors], T]) -> T:
        """``fn`` on the current pair; again on the next pair if the folder was swapped (and removed) under this thread's
        first read. Each try follows to the newest index, so only swaps back to back can make one fail again."""
        for _ in range(100):
            try:
                return fn(*self._parts())
            except RowsReplaced:
                continue
        return fn(*self._parts())

    @property
    def db(self) -> sqlite3.Connection:
        """The calling thread's connection: its reader (committed rows only), or the writer inside its transaction."""
        return self.rows.db

    def reading(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One consistent snapshot across several reads."""
        return self.rows.reading()

    # metadata -------------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        return self._read(lambda rows, _: rows.meta())

    def set_meta(self, values: dict[str, Any]) -> None:
        """Write metadata keys (in the caller's transaction, else in one of their own)."""
        with self.transaction():
            self.rows.set_meta(values)

    def set_threshold(self, threshold: float) -> None:
        """The same/different verdict threshold (squared L2)."""
        self.set_meta({"threshold": float(threshold)})

    def has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def add_schema(self, statements: str) -> None:
        """Create tables beside the faces (``CREATE … IF NOT EXISTS`` statements separated by ``;``)."""
        with self.transaction():
            for statement in filter(str.strip, statements.split(";")):
                self.rows.db.execute(statement)

    # transactions ---------------------------------------------------------------------------------
    def transaction(self) -> contextlib.AbstractContextManager[FaceRows]:
        """A write transaction (all or nothing, one writer across processes). Whatever it changes that a vector
        backend holds (an identity, for Milvus) reaches the backend after the commit."""
        return self._txn()

    @contextlib.contextmanager
    def _txn(self, removed: list[int] | None = None, sync: bool = True) -> Iterator[FaceRows]:
        """One SQLite write transaction, serialized across threads and processes; the vector backend takes the
        committed change before any catch-up (``removed``: the ids this write removes, filled by the body)."""
        rows = self.rows
        if rows.writing_here():  # nested: joins the open transaction
            yield rows
            return
        with self._writer():
            rows, vectors = self._parts()  # a swapped-in index: write into it, never into the one swapped out
            with vectors.mutex:
                before = rows.generation()
                with rows.writing():
                    yield rows
                try:  # committed: a failure here must not make the caller think the write did not happen
                    vectors.written(rows, before, removed or [], sync)
                except Exception:  # noqa: BLE001 - the next search or open catches up from the rows
                    logging.getLogger(__name__).warning("the vector structure could not take a committed write; it "
                                                        "catches up on the next search", exc_info=True)

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        try:
            with writer_lock(self.root, self.lock_timeout):
                yield
        except WriterBusyError as exc:
            raise IndexBusyError(str(exc)) from None

    # faces ----------------------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, paths: list[str], identities: list[str | None],
            boxes: list[list[float] | None], thumbs: list[bytes | None] | None = None, sync: bool = True,
            unique_paths: bool = False, inside: Callable[[list[int]], None] | None = None) -> list[int]:
        """Add faces in one transaction; returns their ids. Nothing is added if anything fails.

        ``sync=False`` leaves the vector structure behind (a bulk build syncs once at the end; a reopen catches up).
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
        with self._txn(sync=sync) as rows:
            db = rows.db
            if unique_paths:
                there = rows.paths(paths)
                keep = [i for i, p in enumerate(paths) if p not in there]
                vectors, paths = vectors[keep], [paths[i] for i in keep]
                identities, boxes, thumbs = [identities[i] for i in keep], [boxes[i] for i in keep], [thumbs[i] for i in keep]
            for v, p, ident, box in zip(vectors, paths, identities, boxes):
                cur = db.execute(
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
            _bump(rows)
        return ids

    def remove(self, ids: list[int] | None = None, path: str | None = None, identity: str | None = None,
               inside: Callable[[list[int]], None] | None = None) -> int:
        """Remove faces by id, image path or identity; returns how many were removed (``inside(ids)`` runs in the
        transaction, as for ``add``)."""
        found: list[int] = []
        with self._txn(removed=found) as rows:
            db = rows.db
            found += [r[0] for r in db.execute(
                "SELECT id FROM faces WHERE id IN (SELECT value FROM json_each(?)) OR path = ? OR identity = ?",
                (json.dumps(ids or []), path, identity))]
            db.execute("DELETE FROM faces WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(found),))
            if inside is not None:
                inside(found)
            _bump(rows)
        for i in found:
            (self.root / "thumbs" / f"{i}.jpg").unlink(missing_ok=True)
        return len(found)


    def __len__(self) -> int:
        return self._read(lambda rows, _: rows.count())

    def faces(self, ids: Iterable[int]) -> dict[int, Face]:
        ids = list(ids)
        return self._read(lambda rows, _: rows.faces(ids))

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """(ids, vectors, identities) of every face."""
        return self._read(lambda rows, _: rows.vectors_of())

    def unpack(self, blobs: Iterable[bytes]) -> np.ndarray:
        """The (n, dim) float32 vectors of ``vector`` column values, one row each."""
        return self.rows.unpack(blobs)

    def identities(self) -> dict[str, int]:
        return self._read(lambda rows, _: rows.identities())

    def paths(self, among: Iterable[str] | None = None) -> set[str]:
        """Image paths with a face in the index (of ``among`` only, when given)."""
        among = None if among is None else list(among)
        return self._read(lambda rows, _: rows.paths(among))

    def thumb_path(self, face_id: int) -> Path | None:
        """The thumbnail of a face in the database (a removed face's leftover file is not served)."""
        if not self._read(lambda rows, _: rows.has_face(face_id)):
            return None
        path = self.root / "thumbs" / f"{int(face_id)}.jpg"
        return path if path.is_file() else None

    # searching ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Catch up with writes committed since (by this or another process); a swapped-in index is opened. Inside
        a write transaction nothing happens (the structure never takes uncommitted rows)."""
        self._read(lambda rows, vectors: None if rows.writing_here() else vectors.catch_up(rows))

    def sync(self) -> None:
        """Rebuild the vector structure from one snapshot of the rows and save it (FAISS: its file)."""
        rows, vectors = self._parts()
        if isinstance(vectors, FaissVectors):
            vectors.rebuild(rows)
            vectors.save(rows)
        else:
            vectors.catch_up(rows)

    def _query(self, queries: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        if q.shape[1] != self.dim:
            raise IndexError_(f"query dimension {q.shape[1]} != index dimension {self.dim}")
        return q

    def search(self, queries: np.ndarray, k: int = 5, identity: str | None = None) -> list[list[Match]]:
        """The ``k`` nearest faces of each query vector (squared L2 on unit vectors), only ``identity``'s if given."""
        q = self._query(queries)
        self.refresh()
        return self._read(lambda rows, vectors: self._search(rows, vectors, q, k, identity))

    @staticmethod
    def _search(rows: FaceRows, vectors: Vectors, q: np.ndarray, k: int, identity: str | None) -> list[list[Match]]:
        """One index's pair: the structure searched and the rows its ids are looked up in are never mixed across a swap."""
        if identity is not None and isinstance(vectors, FaissVectors):  # exact within the identity (its faces are few)
            sims, ids = _exact(q, k, *rows.vectors_of("WHERE identity = ?", (identity,))[:2])
        else:  # a few spare results: approximate structures after removals can leave empty (-1) slots
            sims, ids = vectors.search(q, k + 8, identity)
        faces = rows.faces(int(i) for i in np.ravel(ids) if i >= 0)
        return [[Match(faces[int(i)], float(max(2 - 2 * s, 0.0))) for s, i in zip(srow, irow) if int(i) in faces][:k]
                for srow, irow in zip(sims, ids)]

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(squared distances, ids) of the ``k`` nearest faces of each query, nearest first: fewer columns when the
        index holds fewer faces, and id −1 with distance inf where an approximate structure leaves a slot empty. No
        face rows are read (for callers that look ids up in bulk themselves)."""
        q = self._query(queries)
        if not self.rows.writing_here():  # inside a write the structure is used as it is (no uncommitted rows in it)
            self.refresh()
        sims, ids = self.vectors.search(q, k)
        ids = np.asarray(ids, np.int64).reshape(len(q), -1)
        d = np.where(ids >= 0, np.maximum(2 - 2 * np.asarray(sims, np.float64).reshape(len(q), -1), 0.0), np.inf)
        return d, ids

    def searchable(self, catch_up: bool = True) -> int:
        """Faces a search sees: the structure's size after catching up with the rows (``catch_up=False``: as it is
        now, touching nothing; a health check must never rebuild or refill a structure)."""
        if catch_up:
            self.refresh()
        return self.vectors.count()

    def info(self) -> dict[str, Any]:
        m = self.meta
        return {"root": str(self.root), "faces": len(self), "identities": len(self.identities()), "dim": self.dim,
                "kind": self.kind, "model_id": self.model_id, "embedder": m.get("embedder"),
                "threshold": m.get("threshold"), "generation": m.get("generation")}

    def close(self) -> None:
        """Save the structure as it is if it moved on since it was saved (the next open loads it), close. Closing
        again does nothing (a server's shutdown closes the index its caller may close too)."""
        if self._closed:
            return
        rows, vectors = self._state
        replaced = file_id(self.root / "faces.sqlite") not in (None, rows.ident)
        self._closed = True
        vectors.close(None if replaced else rows)
        rows.close()


def _bump(rows: FaceRows) -> None:
    """The next generation (inside the write that changed the faces)."""
    rows.set_meta({"generation": rows.generation() + 1})


def _exact(q: np.ndarray, k: int, ids: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner products of ``q`` against ``vecs``: (scores, ids), best first."""
    if not len(ids):
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    scores = q @ vecs.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), ids[order]
