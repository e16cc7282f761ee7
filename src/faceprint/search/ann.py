"""FAISS structures over unit vectors with our face ids: exact inner product, IVF or HNSW."""

from __future__ import annotations

import numpy as np

__all__ = ["AUTO_IVF_FROM", "build_ann"]

AUTO_IVF_FROM = 200_000  # measured (benchmarks/index.py): exact search costs 15 ms/query at 100k, 157 ms at 1M


def build_ann(vectors: np.ndarray, ids: np.ndarray, kind: str = "auto", nlist: int | None = None,
              hnsw_m: int = 32, nprobe: int | None = None, ef_search: int = 64):  # type: ignore[no-untyped-def]
    """A FAISS index (inner product) holding ``vectors`` under ``ids``.

    ``auto`` (the default) is flat below ``AUTO_IVF_FROM`` vectors and IVF from there; ``flat`` is exact; ``ivf`` clusters into ``nlist`` = √N lists and probes ``nprobe`` = max(8, nlist/8) of
    them; ``hnsw`` is a graph (M=32, efSearch 64). IVF falls back to flat below 1,000 vectors (too few to train).
    """
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, dim)
    ids = np.ascontiguousarray(ids, np.int64)
    if kind == "auto":
        kind = "ivf" if len(vectors) >= AUTO_IVF_FROM else "flat"
    if kind == "ivf" and len(vectors) >= 1000:
        nlist = nlist or int(np.sqrt(len(vectors)))
        quantizer = faiss.IndexFlatIP(dim)
        base = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        base.train(vectors)
        base.nprobe = min(nprobe or max(8, nlist // 8), nlist)
        index = base  # IVF keeps our ids in its lists itself: it adds and removes them in place (no id map)
    elif kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efSearch = ef_search
        index = faiss.IndexIDMap2(base)
    else:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if len(vectors):
        index.add_with_ids(vectors, ids)
    return index
