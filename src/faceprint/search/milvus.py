"""A Milvus collection as the index's vector structure, for galleries that outgrow one host.

SQLite stays the source of truth (paths, identities, boxes, thumbnails and the vectors themselves); Milvus holds
the vectors keyed by face id with the identity as a filterable field. The URI is a Milvus Lite file
(``gallery.db``, embedded, one process), a Milvus Lite server (``milvus-lite server --host 127.0.0.1``: it binds
every interface unless told), or a Milvus standalone/distributed cluster (``http://host:19530``). Inner product on
unit vectors, so distances are ``2 - 2 * score`` as with FAISS.

Needs ``pip install "faceprint[milvus]"`` (pymilvus with Milvus Lite).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MilvusVectors"]


class MilvusVectors:
    """One collection: ``id`` (INT64, the face id), ``vector`` (FLOAT_VECTOR), ``identity`` (VARCHAR, "" for none)."""

    def __init__(self, uri: str, collection: str, dim: int, token: str | None = None, index_type: str = "FLAT") -> None:
        try:
            from pymilvus import DataType, MilvusClient
        except ImportError as exc:
            raise ImportError('the Milvus backend needs pymilvus: pip install "faceprint[milvus]"') from exc
        self.client = MilvusClient(uri, token=token or "")
        self.name, self.dim, self.index_type = collection, dim, index_type
        if not self.client.has_collection(collection):
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
