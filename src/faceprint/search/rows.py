"""The rows half of a face index: ``faces.sqlite`` (faces, their vectors, metadata), the source of truth.

One writer connection, used only by the thread inside a write transaction, and one read connection per thread
(WAL mode): a reader sees committed rows only, never a transaction still open in another thread. ``reading()``
gives one snapshot across several statements; ``writing()`` one ``BEGIN IMMEDIATE`` transaction (the caller holds
the cross-process writer lock first).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Face", "FaceRows", "IndexBusyError", "IndexError_", "IndexReplacedError", "RowsReplaced", "file_id"]

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
BUSY_MS = 60_000  # SQLite's own wait for a lock another connection holds (the writer lock normally prevents it)


class IndexError_(ValueError):  # noqa: N801 - IndexError is a builtin
    """The index is missing, damaged, or was built with another model."""


class IndexBusyError(IndexError_):
    """Another process kept the index's writer lock past the timeout (a server answers 503)."""


class RowsReplaced(IndexError_):
    """A thread's first read of a store whose folder was swapped meanwhile: read through the new index instead."""


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


class FaceRows:
    """The SQLite database of one index folder, safe to share between threads."""

    def __init__(self, path: Path, dim: int | None = None) -> None:
        # One folder for good: `index build --force` may put another index under this name at any time, and readers
        # open lazily, one per thread. On Linux every file is opened through a descriptor of the folder taken once
        # here (/proc/self/fd/N/…), which follows the folder wherever it is renamed; elsewhere by name, each reader
        # checked to have opened this file.
        self.name, self.dim = path, dim
        self._dir = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY) if Path("/proc/self/fd").is_dir() else -1
        self.folder = Path(f"/proc/self/fd/{self._dir}") if self._dir >= 0 else path.parent
        self.path = self.folder / path.name
        self._w = connect(self.path, SCHEMA, shown=path)  # creates the file of a new index
        self.ident = file_id(self.path)  # the file this object reads and writes
        self._lock = threading.RLock()  # one write transaction at a time in this process
        self._owner: int | None = None  # the thread inside the write transaction
        self._readers: dict[int, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self._closed = False

    # connections ---------------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        """The connection for the calling thread: the writer's inside its own write transaction, else its reader."""
        if self._owner == threading.get_ident():
            return self._w
        return self._reader()

    def writing_here(self) -> bool:
        """Whether the calling thread is inside a write transaction."""
        return self._owner == threading.get_ident()

    def _reader(self) -> sqlite3.Connection:
        me = threading.get_ident()
        conn = self._readers.get(me)
        if conn is not None:
            return conn
        try:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = 1")
            conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone()  # the file is open now
        except (IndexError_, sqlite3.Error) as exc:  # the folder was swapped out and removed
            raise RowsReplaced(f"{self.name.parent} was replaced") from exc
        # A replaced file never comes back under its name: the name (or the folder's descriptor) holding ours after
        # the open means ours was opened
        if file_id(self.path) != self.ident:
            conn.close()
            raise RowsReplaced(f"{self.name.parent} was replaced")
        with self._readers_lock:
            if self._closed:
                conn.close()
                raise IndexError_(f"{self.name.parent}: the index is closed")
            alive = {t.ident for t in threading.enumerate()}
            for tid in [t for t in self._readers if t not in alive]:  # threads gone: their connections too
                self._readers.pop(tid).close()
            self._readers[me] = conn
        return conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several reads (inside a write transaction: that transaction's own view)."""
        conn = self.db
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (rolled back on any error). Nested calls join the open one."""
        with self._lock:
            if self._owner == threading.get_ident():
                yield self._w
                return
            try:
                self._w.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # e.g. a writer of an older faceprint without the lock
                raise IndexError_(f"{self.name.parent}: the index database is busy or unwritable ({exc})") from None
            self._owner = threading.get_ident()
            try:
                yield self._w
                self._w.execute("COMMIT")
            except BaseException:
                if self._w.in_transaction:  # the body failed, or the commit did (a full disk): nothing stays open
                    self._w.execute("ROLLBACK")
                raise
            finally:
                self._owner = None

    def close(self) -> None:
        with self._lock, self._readers_lock:
            self._closed = True
            for conn in self._readers.values():
                conn.close()
            self._readers.clear()
            self._w.close()
            if self._dir >= 0:
                os.close(self._dir)
                self._dir = -1

    # metadata ------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, Any]) -> None:
        """Write metadata keys (inside the caller's write transaction)."""
        if not self.writing_here():
            raise RuntimeError("set_meta needs a write transaction")
        self._w.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])

    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(json.loads(row[0])) if row else 0

    # faces ---------------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def max_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0])

    def faces(self, ids: Iterable[int]) -> dict[int, Face]:
        rows = self.db.execute("SELECT id, path, identity, box, added_at FROM faces WHERE id IN (SELECT value FROM "
                               "json_each(?))", (json.dumps([int(i) for i in ids]),)).fetchall()
        return {r[0]: Face(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, r[4]) for r in rows}

    def vectors_of(self, where: str = "", args: tuple[Any, ...] = ()) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """(ids, vectors, identities) of the faces matching ``where`` (all by default), by id."""
        rows = self.db.execute(f"SELECT id, vector, identity FROM faces {where} ORDER BY id", args).fetchall()
        return np.array([r[0] for r in rows], np.int64), self.unpack(r[1] for r in rows), [r[2] for r in rows]

    def unpack(self, blobs: Iterable[bytes]) -> np.ndarray:
        """The (n, dim) float32 vectors of ``vector`` column values, one row each."""
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, int(self.dim or 0))

    def identities(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT identity, COUNT(*) FROM faces WHERE identity IS NOT NULL GROUP BY identity"))

    def paths(self, among: Iterable[str] | None = None) -> set[str]:
        """Image paths with a face in the index (only those of ``among`` when given: no work that grows with the index)."""
        if among is None:
            return {r[0] for r in self.db.execute("SELECT DISTINCT path FROM faces")}
        return {r[0] for r in self.db.execute("SELECT DISTINCT path FROM faces WHERE path IN (SELECT value FROM "
                                              "json_each(?))", (json.dumps([str(p) for p in among]),))}

    def has_face(self, face_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM faces WHERE id = ?", (int(face_id),)).fetchone() is not None


def connect(path: Path, schema: str | None = None, shown: Path | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, waiting for SQLite's own locks."""
    try:
        if schema is None:  # a reader: never creates a file (a folder swapped out and being removed stays empty)
            conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, check_same_thread=False, isolation_level=None,
                                   timeout=BUSY_MS / 1000)
        else:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_MS / 1000)
        if schema is not None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise IndexError_(f"{shown or path}: damaged index database ({exc})") from exc
    return conn


def file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``: which file a name holds now (None if none)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino
