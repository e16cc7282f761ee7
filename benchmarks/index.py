"""FAISS index kinds for the face index: build time, search latency and recall@10 on random unit vectors.

Usage: python benchmarks/index.py --json PATH [--sizes 10000 100000 1000000] [--queries 200] [--hnsw-max 100000]
For each size: flat (exact inner product), IVF (√N lists, nprobe max(8, √N/8)) and HNSW (M 32, efSearch 64),
built with faceprint.search.ann.build_ann exactly as the index builds them. Latency is per single-vector query
(median over --queries); recall@10 is against the exact flat search. HNSW above --hnsw-max is skipped (its
build on 2 cores takes tens of minutes at 1M). Two data sets: random unit vectors (no structure: the worst case for IVF and HNSW) and face-like clustered
vectors (10 views per identity, queries are new views of gallery identities).
JSON: a list of {data, n, kind, build_s, query_ms_p50, recall_at_10}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceprint.search.ann import build_ann


def unit(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    for i in range(0, n, 100_000):  # chunks keep the float64 temporaries small
        x = rng.standard_normal((min(100_000, n - i), d), dtype=np.float32)
        out[i : i + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def clustered(n: int, d: int, seed: int, per: int = 10, noise: float = 0.022) -> tuple[np.ndarray, np.ndarray]:
    """Face-like data: n/per identities × per noisy views (same-identity squared distance ≈ 0.5), and
    queries that are new views of gallery identities."""
    rng = np.random.default_rng(seed)
    centres = unit(max(n // per, 1), d, seed + 1)
    out = np.empty((n, d), np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        x = centres[(np.arange(i, i + m) // per) % len(centres)] + noise * rng.standard_normal((m, d), dtype=np.float32)
        out[i : i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, centres


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--hnsw-max", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rows = []
    for n, data in [(n, data) for data in ("random", "clustered") for n in args.sizes]:
        if data == "random":
            x, q = unit(n, args.dim, 0), unit(args.queries, args.dim, 1)
        else:
            x, centres = clustered(n, args.dim, 0)
            rng = np.random.default_rng(7)
            q = centres[rng.integers(0, len(centres), args.queries)] + 0.022 * rng.standard_normal((args.queries, args.dim), dtype=np.float32)
            q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
        exact = None
        for kind in ("flat", "ivf", "hnsw"):
            if kind == "hnsw" and n > args.hnsw_max:
                print(f"{data:9s} {n:>9} {kind:5s} skipped (above --hnsw-max)", flush=True)
                continue
            t0 = time.perf_counter()
            index = build_ann(x, np.arange(n), kind)
            build_s = time.perf_counter() - t0
            times = []
            found = np.empty((len(q), 10), np.int64)
            for i in range(len(q)):
                t0 = time.perf_counter()
                _, ids = index.search(q[i : i + 1], 10)
                times.append(time.perf_counter() - t0)
                found[i] = ids[0]
            if kind == "flat":
                exact = found
            recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
            row = {"data": data, "n": n, "kind": kind, "build_s": round(build_s, 2), "query_ms_p50": round(1000 * float(np.median(times)), 3),
                   "recall_at_10": round(recall, 4)}
            rows.append(row)
            print(f"{data:9s} {n:>9} {kind:5s} build {build_s:8.2f} s  query {row['query_ms_p50']:8.3f} ms  recall@10 {recall:.3f}", flush=True)
            del index
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
