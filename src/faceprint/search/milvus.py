"""A Milvus collection as the index's vector structure, for galleries that outgrow one host.

SQLite stays the source of truth (paths, identities, boxes, thumbnails and the vectors themselves); Milvus holds
the vectors keyed by face id with the identity as a filterable field. The URI is a Milvus Lite file
(``gallery.db``, embedded, one process), a Milvus Lite server (``milvus-lite server --host 127.0.0.1``: it binds
every interface unless told), or a Milvus standalone/distributed cluster (``http://host:19530``). Inner product on
unit vectors, so distances are ``2 - 2 * score`` as with FAISS.

Needs ``pip install "faceprint[milvus]"`` (pymilvus with Milvus Lite).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.search.lock import WriterBusyError, writer_lock
from faceprint.search.rows import FaceRows, IndexBusyError, IndexError_

__all__ = ["MilvusMirror", "MilvusVectors", "milvus_of"]

RETRY_S = 5.0  # seconds a search waits after a failed send to Milvus before it tries again

# Which faces changed since Milvus last took them: filled by triggers inside each write transaction (so it commits
# with the rows, or not at all) and emptied by the drain that sends exactly those rows to Milvus.
LOG = [
    "CREATE TABLE IF NOT EXISTS vector_log (id INTEGER PRIMARY KEY)",
    "CREATE TRIGGER IF NOT EXISTS vector_log_insert AFTER INSERT ON faces "
    "BEGIN INSERT OR IGNORE INTO vector_log VALUES (NEW.id); END",
    "CREATE TRIGGER IF NOT EXISTS vector_log_delete AFTER DELETE ON faces "
    "BEGIN INSERT OR IGNORE INTO vector_log VALUES (OLD.id); END",
    "CREATE TRIGGER IF NOT EXISTS vector_log_update AFTER UPDATE OF identity, vector ON faces "
    "BEGIN INSERT OR IGNORE INTO vector_log VALUES (NEW.id); END",
]


class MilvusVectors:
    """One collection: ``id`` (INT64, the face id), ``vector`` (FLOAT_VECTOR), ``identity`` (VARCHAR, "" for none)."""

    def __init__(self, uri: str, collection: str, dim: int, token: str | None = None, index_type: str = "FLAT") -> None:
        try:
            from pymilvus import DataType, MilvusClient
        except ImportError as exc:
            raise ImportError('the Milvus backend needs pymilvus: pip install "faceprint[milvus]"') from exc
        self.client = MilvusClient(uri, token=token or "")
        self.name, self.dim, self.index_type = collection, dim, index_type
        self.created = not self.client.has_collection(collection)
        if self.created:
            schema = self.client.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("identity", DataType.VARCHAR, max_length=1024)
            params = self.client.prepare_index_params()
            params.add_index("vector", index_type=index_type, metric_type="IP")
            # Strong: a search right after a write sees it (the index marks the collection current after writing)
            self.client.create_collection(collection, schema=schema, index_params=params, consistency_level="Strong")

    def count(self) -> int:
        rows = self.client.query(self.name, filter="id >= 0", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def upsert(self, ids: Sequence[int], vectors: np.ndarray, identities: Sequence[str | None], chunk: int = 5000) -> None:
        for i in range(0, len(ids), chunk):
            rows = [{"id": int(f), "vector": v.tolist(), "identity": ident or ""}
                    for f, v, ident in zip(ids[i : i + chunk], vectors[i : i + chunk], identities[i : i + chunk])]
            self.client.upsert(self.name, rows)

    def delete(self, ids: Sequence[int]) -> None:
        if len(ids):
            self.client.delete(self.name, ids=[int(i) for i in ids])

    def clear(self) -> None:
        """Delete every row (the collection and its schema stay)."""
        self.client.delete(self.name, filter="id >= 0")

    def search(self, queries: np.ndarray, k: int, identity: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n, k), padded with -1 ids where fewer faces match."""
        flt = f"identity == {_quote(identity)}" if identity is not None else ""
        hits = self.client.search(self.name, data=[q.tolist() for q in queries], limit=k, filter=flt,
                                  search_params={"metric_type": "IP"})
        scores, ids = np.zeros((len(queries), k), np.float32), np.full((len(queries), k), -1, np.int64)
        for r, row in enumerate(hits):
            for c, hit in enumerate(row[:k]):
                scores[r, c], ids[r, c] = float(hit["distance"]), int(hit["id"])
        return scores, ids

    def drop(self) -> None:
        """Delete the collection (an index replaced by a rebuild)."""
        if self.client.has_collection(self.name):
            self.client.drop_collection(self.name)

    def close(self) -> None:
        self.client.close()


def _quote(value: str) -> str:
    """A Milvus string literal (backslashes and double quotes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MilvusMirror:
    """A Milvus collection as an index's vector structure (the ``Vectors`` interface of ``search/vectors.py``).

    After each commit the writer sends Milvus the rows that changed and nothing else (``vector_log``); a failure
    leaves them logged, and the next write, search or open sends them. A full refill happens only for a collection
    that never held this index (new, or named in no completed fill)."""

    def __init__(self, root: Path, spec: dict[str, Any], dim: int, lock_timeout: float = 60.0) -> None:
        self.root, self.lock_timeout = root, lock_timeout
        self.client = MilvusVectors(spec["uri"], spec.get("collection", "faceprint_faces"), dim,
                                    index_type=spec.get("index", "FLAT"))
        self.mutex = threading.RLock()
        self._retry_at = 0.0  # searches leave a failed send alone until then (writes always try)

    def _full(self, rows: FaceRows) -> bool:
        return self.client.created or rows.meta().get("mirror") != self.client.name

    def _logged(self, rows: FaceRows) -> bool:
        try:
            return rows.db.execute("SELECT 1 FROM vector_log LIMIT 1").fetchone() is not None
        except Exception:  # noqa: BLE001 - no log table yet (an index from before it)
            return True

    def current(self, rows: FaceRows) -> bool:
        return not self._full(rows) and not self._logged(rows)

    def open(self, rows: FaceRows) -> None:
        """Make the log and its triggers, then refill (a new collection) or send what is logged."""
        if self.current(rows):
            return
        try:
            with writer_lock(self.root, self.lock_timeout), self.mutex:
                with rows.writing() as db:
                    for statement in LOG:
                        db.execute(statement)
                if self._full(rows):
                    self.rebuild(rows)
                else:
                    self._drain(rows)
        except WriterBusyError as exc:
            raise IndexBusyError(str(exc)) from None

    def catch_up(self, rows: FaceRows) -> None:
        """Send what other writers logged and could not send; never waits for another process's write, and after a
        failed send waits ``RETRY_S`` before a search tries again (a Milvus that is down is not retried per search)."""
        if time.monotonic() < self._retry_at or not self._logged(rows):
            return
        try:
            with writer_lock(self.root, timeout=0.0, quiet=True), self.mutex:
                self._drain(rows)
        except WriterBusyError:
            pass  # that writer sends its own rows when it commits

    def written(self, rows: FaceRows, before: int, removed: list[int], sync: bool) -> None:
        self._drain(rows)  # the caller holds the writer lock and ``mutex``

    def _drain(self, rows: FaceRows) -> None:
        try:
            with self.mutex, rows.writing() as db:
                ids = [r[0] for r in db.execute("SELECT id FROM vector_log ORDER BY id")]
                if not ids:
                    return
                there, vecs, idents = rows.vectors_of("WHERE id IN (SELECT value FROM json_each(?))", (_json(ids),))
                gone = sorted(set(ids) - set(there.tolist()))
                if len(there):
                    self.client.upsert(there.tolist(), vecs, idents)
                self.client.delete(gone)
                db.execute("DELETE FROM vector_log WHERE id IN (SELECT value FROM json_each(?))", (_json(ids),))
        except IndexError_:
            raise
        except Exception:  # noqa: BLE001 - the rows are committed and stay logged: sent by the next drain
            self._retry_at = time.monotonic() + RETRY_S
            logging.getLogger(__name__).warning("Milvus write failed; the changed rows stay logged", exc_info=True)

    def rebuild(self, rows: FaceRows) -> None:
        """Refill the collection from the rows (the caller holds the writer lock)."""
        with self.mutex, rows.writing() as db:
            ids, vecs, idents = rows.vectors_of()
            self.client.clear()
            self.client.upsert(ids.tolist(), vecs, idents)
            db.execute("DELETE FROM vector_log")
            rows.set_meta({"mirror": self.client.name})
        self.client.created = False

    def search(self, q: np.ndarray, k: int, identity: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.client.search(q, k, identity)

    def count(self) -> int:
        return self.client.count()

    def close(self, rows: FaceRows | None) -> None:
        self.client.close()


def milvus_of(spec: dict[str, Any], dim: int) -> MilvusVectors | None:
    """The Milvus collection named by an index's ``vectors`` metadata, or None for the embedded FAISS default."""
    if spec.get("backend", "faiss") == "faiss":
        return None
    if spec["backend"] != "milvus":
        raise IndexError_(f"unknown vector backend {spec['backend']!r} (faiss or milvus)")
    return MilvusVectors(spec["uri"], spec.get("collection", "faceprint_faces"), dim, index_type=spec.get("index", "FLAT"))


def _json(ids: list[int]) -> str:
    return json.dumps([int(i) for i in ids])
