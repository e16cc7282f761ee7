"""Load test of `faceprint serve`: 200 concurrent /search uploads against a live server with an LFW gallery.

Usage: python benchmarks/serve.py --json PATH [--requests 200] [--work DIR] [--screenshot PNG]
The gallery is the shared LFW images indexed with the imported CASIA-WebFace model (the MTCNN crops that
benchmarks/lfw.py leaves in its work folder when present, else the images aligned here). The server runs as
a separate process (`faceprint serve INDEX --detect`) on 127.0.0.1; every request uploads a different
original LFW photo (the server detects, aligns, embeds and searches). With --screenshot, headless Chromium
also uploads the group photo and saves the page.
The burst runs twice in one run, against the same server with micro-batching off (--max-batch 1) and on (32).
JSON: rps_unbatched, rps_batched, batching_speedup, p50_ms, p99_ms and single_request_p50_ms (batched; 30 sequential
requests after 10 warm-up ones), single_request_p50_ms_unbatched, and each run's errors, wall_s, model batch counts;
and enroll_index_ms_10k / enroll_index_ms_100k: the index part of one /enroll (one face with its thumbnail into a
store of 10k / 100k 512-d faces: the transaction and the in-place FAISS update), median of 30. --enroll-only
measures just those.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import start_server  # noqa: E402
from orl_common import SHARED, casia_embedder  # noqa: E402

from faceprint.models import PretrainedInfo, save_pretrained  # noqa: E402
from faceprint.search import build_index  # noqa: E402


async def fire(port: int, files: list[Path]) -> tuple[list[float], int]:
    import httpx

    limits = httpx.Limits(max_connections=len(files))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600, limits=limits) as client:
        async def one(path: Path) -> tuple[float, bool]:
            t0 = time.perf_counter()
            try:
                r = await client.post("/search", files={"file": (path.name, path.read_bytes(), "image/jpeg")}, data={"k": "5"})
                ok = r.status_code == 200 or (r.status_code == 422 and "no face" in r.text)
            except httpx.HTTPError:
                ok = False
            return time.perf_counter() - t0, ok

        results = await asyncio.gather(*(one(p) for p in files))
    return [t for t, _ in results], sum(not ok for _, ok in results)


def screenshot(port: int, image: Path, out: Path) -> None:
    import shutil

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.set_input_files("#file", str(image))
        page.wait_for_selector(".match img", timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def enroll_index_ms(n: int, work: Path, trials: int = 30) -> float:
    """Median ms to add one face (vector + thumbnail) to a store that already holds ``n`` random faces."""
    from faceprint.search import FaceStore

    root = work / f"enroll-{n}"
    rng = np.random.default_rng(0)
    if not root.exists():
        store = FaceStore(root, create=True, model_id="bench", dim=512, kind="flat")
        for i in range(0, n, 10_000):
            v = rng.normal(size=(min(10_000, n - i), 512)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            store.add(v, [f"g{i + j}" for j in range(len(v))], [f"id{(i + j) // 10}" for j in range(len(v))],
                      [None] * len(v), sync=False)
        store.sync()
        store.close()
    store = FaceStore(root)
    thumb = bytes(3000)
    times = []
    for t in range(trials):
        v = rng.normal(size=(1, 512)).astype(np.float32)
        v /= np.linalg.norm(v)
        t0 = time.perf_counter()
        store.add(v, [f"enroll-{t}-{time.time()}"], ["new"], [None], [thumb])
        times.append((time.perf_counter() - t0) * 1000)
    assert store.vectors.count() == len(store)  # the structure really holds the new faces
    store.close()
    return round(float(np.median(times)), 2)


def burst(index_dir: Path, files: list[Path], max_batch: int) -> dict[str, Any]:
    """10 sequential requests, then all of ``files`` at once, against `faceprint serve --max-batch N`."""
    import httpx

    # every request queued (--max-pending): the burst measures throughput, not the 503s of a full queue
    server, port = start_server(index_dir, "--detect", "--max-batch", str(max_batch), "--max-pending", str(len(files)))
    try:
        single = [asyncio.run(fire(port, [f]))[0][0] * 1000 for f in files[:40]][10:]  # 10 warm-up, 30 timed
        t0 = time.perf_counter()
        latencies, errors = asyncio.run(fire(port, files))
        wall = time.perf_counter() - t0
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.array(latencies) * 1000
    return {"max_batch": max_batch, "errors": errors, "rps": round(len(files) / wall, 2), "wall_s": round(wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "single_request_p50_ms": round(float(np.median(single)), 1), "gallery_faces": health["faces"],
            "model": health["model"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-serve")
    ap.add_argument("--aligned", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-lfw-mtcnn-160-m32")
    ap.add_argument("--screenshot", type=Path)
    ap.add_argument("--enroll-only", action="store_true", help="measure only the /enroll index latency at 10k and 100k")
    args = ap.parse_args()
    enroll = {f"enroll_index_ms_{k}": enroll_index_ms(n, args.work) for k, n in (("10k", 10_000), ("100k", 100_000))}
    print(enroll)
    if args.enroll_only:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(args.json.read_text()) if args.json.is_file() else {}
        args.json.write_text(json.dumps({**old, **enroll}, indent=2) + "\n")
        return
    os.environ["FACEPRINT_HOME"] = str(args.work / "home")
    index_dir = args.work / "lfw-index"
    if not index_dir.exists():
        emb = casia_embedder(backend="torch")
        save_pretrained(emb.model.state_dict(), PretrainedInfo(name="casia-webface", source="20180408-102900.pb"))
        pre = args.aligned.is_dir()
        gallery = args.aligned if pre else SHARED / "lfw" / "images"
        t0 = time.perf_counter()
        index, report = build_index(gallery, index_dir, {"weights": "casia-webface", "backend": "onnx"}, detect=not pre,
                                    progress=lambda d, t: print(f"\rindexing {d}/{t}", end="", flush=True))
        print(f"\nindexed {report.faces} faces in {time.perf_counter() - t0:.0f} s")
        index.close()
    rng = np.random.default_rng(0)
    photos = sorted((SHARED / "lfw" / "images").rglob("*.jpg"))
    files = [photos[i] for i in rng.choice(len(photos), args.requests, replace=False)]
    runs = {name: burst(index_dir, files, batch) for name, batch in (("unbatched", 1), ("batched", 32))}
    off, on = runs["unbatched"], runs["batched"]
    result = {"requests": args.requests, "rps_unbatched": off["rps"], "rps_batched": on["rps"],
              "batching_speedup": round(on["rps"] / off["rps"], 2), "p50_ms": on["p50_ms"], "p99_ms": on["p99_ms"],
              "single_request_p50_ms": on["single_request_p50_ms"],
              "single_request_p50_ms_unbatched": off["single_request_p50_ms"], "unbatched": off, "batched": on,
              **enroll, "note": "all requests sent at once by a client on the same 2 cores; the same server with "
              "--max-batch 1 (one request per forward) and --max-batch 32 (micro-batching)"}
    print(json.dumps(result, indent=2))
    if args.screenshot:
        server, port = start_server(index_dir, "--detect")
        try:
            screenshot(port, SHARED / "samples" / "multiface.jpg", args.screenshot)
            print(f"wrote {args.screenshot}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
