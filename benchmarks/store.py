"""The face store under concurrent use, and what adding costs as the index grows.

Usage: python benchmarks/store.py --json PATH [--seconds 60] [--faces 20000] [--photos 2000]

- Per vector backend (FAISS flat, FAISS IVF, Milvus Lite), in a child process of its own (a segmentation fault is
  counted, not fatal): a store of ``--faces`` random 512-d unit vectors; four threads search (one query a call) for
  a quarter of ``--seconds`` with no writer (idle QPS), then for ``--seconds`` while one thread adds a face and
  removes another, over and over. ``wrong_hits``: hits whose distance is not the distance to the vector stored
  under the returned face; ``dirty_reads``: a search or count that ran wholly inside another thread's open write
  transaction and saw its uncommitted face; ``crashes``: the child died; ``search_qps_during_writes_over_idle``.
- ``readd_unchanged_over_first_add``: wall time of ``faceprint library add LIB PHOTOS`` run again on the unchanged
  folder over the first add (``--photos`` LFW photos with MTCNN when ../shared/data/lfw exists, else synthetic
  faces without detection; a tiny 16-d model either way: the rerun must not depend on the model's cost).
- ``add_one_photo_100k_over_1k``: ``faceprint index add IX photo`` end to end (a new process: open, detect, embed,
  add, close) on an index of 100,000 faces over the same on one of 1,000 (median of three each).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DIM = 512


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def stress(backend: str, faces: int, seconds: float, work: Path) -> dict[str, object]:
    """One backend's figures (runs in the child)."""
    from faceprint.search import FaceStore

    kind, vectors = ("ivf", None) if backend == "faiss_ivf" else ("flat", None)
    if backend == "milvus_lite":
        vectors = {"backend": "milvus", "uri": str(work / "gallery.db"), "collection": "stress"}
    pool = _unit(faces, DIM, 0)
    store = FaceStore(work / "ix", create=True, model_id="m", dim=DIM, kind=kind, vectors=vectors)
    for i in range(0, faces, 5000):
        store.add(pool[i : i + 5000], [f"p{j}" for j in range(i, min(i + 5000, faces))], [None] * len(pool[i : i + 5000]),
                  [None] * len(pool[i : i + 5000]), sync=False)
    store.sync()
    truth = {f"p{i}": pool[i] for i in range(faces)}
    lock = threading.Lock()
    state = {"seq": 0, "path": "", "count": faces}  # seq odd: a write transaction is open with face ``path`` in it
    figures = {"searches": 0, "wrong_hits": 0, "dirty_reads": 0, "writes": 0, "window_searches": 0, "errors": []}
    stop = threading.Event()
    queries = pool[::97]

    def search() -> None:
        rng = np.random.default_rng(threading.get_ident() % 2**32)
        n = wrong = dirty = inside = 0
        while not stop.is_set():
            s0, path = state["seq"], state["path"]
            q = truth[path] if s0 % 2 and path in truth else queries[rng.integers(0, len(queries))]
            try:
                hits = store.search(q, k=5)[0]
                count = len(store) if n % 8 == 0 else None
            except Exception as exc:  # noqa: BLE001 - counted
                figures["errors"].append(repr(exc))  # type: ignore[union-attr]
                return
            s1 = state["seq"]
            n += 1
            wrong += sum(abs(float(((truth[h.face.path] - q) ** 2).sum()) - h.distance) > 1e-4 for h in hits)
            if s0 == s1 and s0 % 2:  # wholly inside one open write: its face must not be seen
                inside += 1
                dirty += any(h.face.path == path for h in hits) + (count is not None and count != state["count"])
        with lock:
            figures["searches"] += n  # type: ignore[operator]
            figures["wrong_hits"] += wrong  # type: ignore[operator]
            figures["dirty_reads"] += dirty  # type: ignore[operator]
            figures["window_searches"] += inside  # type: ignore[operator]

    def write() -> None:
        rng, live, k = np.random.default_rng(1), list(range(1, faces + 1)), 0
        while not stop.is_set() and k < 1_000_000:  # bounded
            path, vec = f"w{k}", _unit(1, DIM, 10_000 + k)
            truth[path] = vec[0]

            def hold(ids: list[int], path: str = path) -> None:  # the transaction is open, its row inserted
                state["path"] = path
                state["seq"] += 1
                time.sleep(0.005)
                state["seq"] += 1

            live += store.add(vec, [path], [None], [None], inside=hold)
            store.remove(ids=[live.pop(int(rng.integers(0, len(live))))])
            figures["writes"] += 2  # type: ignore[operator]
            k += 1

    def phase(with_writer: bool, span: float) -> float:
        before = figures["searches"]
        threads = [threading.Thread(target=search) for _ in range(4)]
        threads += [threading.Thread(target=write)] if with_writer else []
        stop.clear()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(span)
        stop.set()
        for t in threads:
            t.join(600)
        return (figures["searches"] - before) / (time.perf_counter() - t0)  # type: ignore[operator]

    idle = phase(False, seconds / 4)
    figures.update(wrong_hits=0, dirty_reads=0, window_searches=0)
    busy = phase(True, seconds)
    ok = len(store) == faces and store.searchable() == faces
    store.close()
    return {**figures, "idle_qps": round(idle, 1), "qps_during_writes": round(busy, 1),
            "search_qps_during_writes_over_idle": round(busy / idle, 3), "consistent_after": ok}


def _child(backend: str, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        proc = subprocess.run([sys.executable, __file__, "--child", backend, "--seconds", str(args.seconds), "--faces",
                               str(args.faces), "--json", str(out)], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0 or not out.is_file():
            return {"crashes": 1, "returncode": proc.returncode, "stderr": proc.stderr[-2000:]}
        return {"crashes": 0, **json.loads(out.read_text())}


def _tiny(home: Path, name: str, dim: int) -> None:
    import torch

    from faceprint.backbones import create_backbone
    from faceprint.models import PretrainedInfo, save_pretrained

    os.environ["FACEPRINT_HOME"] = str(home)
    torch.manual_seed(0)
    model = create_backbone("small_cnn", embedding_dim=dim)
    save_pretrained(model.state_dict(), PretrainedInfo(name=name, backbone="small_cnn", embedding_dim=dim, image_size=32))


def _cli(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "faceprint", *args], check=True, capture_output=True, timeout=3600)
    return time.perf_counter() - t0


def readd(work: Path, photos: int) -> dict[str, object]:
    src = work / "photos"
    lfw = sorted((SHARED / "lfw" / "images").rglob("*.jpg"))[:photos] if (SHARED / "lfw").is_dir() else []
    if lfw:
        for p in lfw:
            (src / p.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, src / p.parent.name / p.name)
        detect = "--detect"
    else:
        from faceprint.data.synth import write_synthetic_dataset

        write_synthetic_dataset(src, identities=photos // 10, images_per_identity=10, size=64, seed=0)
        detect = "--no-detect"
    lib = work / "lib"
    first = _cli("library", "add", str(lib), str(src), "--weights", "tiny", detect)
    again = _cli("library", "add", str(lib), str(src), "--weights", "tiny", detect)
    return {"readd_photos": len(list(src.rglob("*.*"))), "readd_source": "lfw+mtcnn" if lfw else "synthetic",
            "first_add_s": round(first, 2), "readd_s": round(again, 2),
            "readd_unchanged_over_first_add": round(again / first, 4)}


def add_one(work: Path) -> dict[str, object]:
    from faceprint.data.synth import write_synthetic_dataset
    from faceprint.search import FaceStore, build_index

    gallery = write_synthetic_dataset(work / "one", identities=2, images_per_identity=4, size=32, seed=1)
    photo = sorted(gallery.rglob("*.png"))[0]
    seconds = {}
    for n in (1_000, 100_000):
        ix = work / f"ix{n}"
        build_index(gallery / sorted(os.listdir(gallery))[0], ix, {"weights": "tiny512"}, detect=False)[0].close()
        store = FaceStore(ix)
        have = len(store)
        for i in range(0, n - have, 10_000):
            m = min(10_000, n - have - i)
            store.add(_unit(m, DIM, 3 + i), [f"filler/{i + j}.png" for j in range(m)], [None] * m, [None] * m, sync=False)
        store.sync()
        store.close()
        runs = []
        for r in range(3):
            copy = work / f"new-{n}-{r}.png"
            shutil.copy(photo, copy)
            runs.append(_cli("index", "add", str(ix), str(copy)))
        seconds[n] = statistics.median(runs)
    return {"add_one_photo_1k_s": round(seconds[1_000], 3), "add_one_photo_100k_s": round(seconds[100_000], 3),
            "add_one_photo_100k_over_1k": round(seconds[100_000] / seconds[1_000], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--faces", type=int, default=20_000)
    ap.add_argument("--photos", type=int, default=2_000)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            args.json.write_text(json.dumps(stress(args.child, args.faces, args.seconds, Path(tmp))))
        return
    result: dict[str, object] = {"seconds": args.seconds, "faces": args.faces, "dim": DIM}
    backends = ["faiss_flat", "faiss_ivf"]
    try:
        import milvus_lite  # noqa: F401

        backends.append("milvus_lite")
    except ImportError:
        result["milvus_lite"] = "not installed (pip install 'faceprint[milvus]')"
    for backend in backends:
        result[backend] = _child(backend, args)
        print(backend, json.dumps(result[backend]), flush=True)
    rows = [result[b] for b in backends]
    result.update(crashes=sum(r["crashes"] for r in rows), wrong_hits=sum(r.get("wrong_hits", 0) for r in rows),
                  dirty_reads=sum(r.get("dirty_reads", 0) for r in rows), searches=sum(r.get("searches", 0) for r in rows),
                  writes=sum(r.get("writes", 0) for r in rows),
                  search_qps_during_writes_over_idle=min(r.get("search_qps_during_writes_over_idle", 0.0) for r in rows))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _tiny(work / "home", "tiny", 16)
        _tiny(work / "home", "tiny512", DIM)
        result.update(readd(work, args.photos))
        print("readd", result["readd_unchanged_over_first_add"], flush=True)
        result.update(add_one(work))
    print(json.dumps(result, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
