"""The service's fault figures for benchmarks/faults.py: cross-site writes, two writers beside a live server, an index
swapped under load, a burst of large uploads, a soak with the server's RSS sampled each minute, and a private library
(benchmarks/service_privacy.py: every route without credentials, a brute-forced login, JSON bombs, a photo tiled
with faces, framing).

Every server is `faceprint serve` in its own process on 127.0.0.1 (benchmarks/common.start_server).

Usage: python benchmarks/service_faults.py --json PATH   runs the private-library figures and merges them into PATH
(benchmarks/faults.py --only-service runs them all).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import http.server
import io
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import start_server  # noqa: E402 - benchmarks/ is on sys.path
from service_privacy import private_library  # noqa: E402

__all__ = ["burst", "csrf", "private_library", "soak", "swap", "two_writers"]


def rss_mb(pid: int, peak: bool = False) -> int:
    """The process's resident memory (``peak``: its high-water mark), MB."""
    key = "VmHWM:" if peak else "VmRSS:"
    return int(Path(f"/proc/{pid}/status").read_text().split(key)[1].split()[0]) // 1024


def _faceprint(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "faceprint", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


class _Searcher:
    """Clients searching the server in a loop (``threads`` at once) until stopped: counts answers by class."""

    def __init__(self, port: int, body: bytes, threads: int = 4) -> None:
        self.codes: list[int] = []
        self._stop = threading.Event()
        self._port, self._body = port, body
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{self._port}", timeout=60) as client:
            while not self._stop.is_set():
                try:
                    r = client.post("/search", files={"file": ("q.png", self._body, "image/png")})
                    self.codes.append(r.status_code)
                except httpx.HTTPError:
                    self.codes.append(599)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        for t in self._threads:
            t.join(60)
        return {"requests": len(self.codes), "errors": sum(c not in (200, 422) for c in self.codes)}


def csrf(index_dir: Path, probe: Path) -> dict[str, Any]:
    """Cross-site /enroll attempts, as browsers send them (and spoofed variants), plus a real Chromium page on another
    origin posting a form and a no-cors fetch when chromium is installed. Refused: 403 (where the answer is visible)
    and no face added. The server's own origin still enrols (``csrf_own_origin_enrolled``)."""
    import httpx

    proc, port = start_server(index_dir)
    own = f"http://127.0.0.1:{port}"
    variants = [
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": f"http://localhost:{port + 1}"},
        {"Sec-Fetch-Site": "cross-site", "Origin": own},  # a spoofed Origin does not outvote the browser's own header
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example"},
        {"Origin": f"http://127.0.0.1:{port + 1}"},
        {"Origin": "null"},
        {"Origin": f"https://127.0.0.1:{port}"},
        {"Origin": f"http://127.0.0.1.evil.example:{port}"},
        {"Origin": f"http://127.0.0.1:{port}.evil.example"},
    ]
    attempts = refused = 0
    body = probe.read_bytes()
    try:
        with httpx.Client(base_url=own, timeout=60) as client:
            def faces() -> int:
                return int(client.get("/healthz").json()["faces"])

            for headers in variants:
                before = faces()
                r = client.post("/enroll", files={"file": ("x.png", body, "image/png")}, data={"name": "mallory"},
                                headers=headers)
                attempts += 1
                refused += r.status_code == 403 and faces() == before
            browser_attempts, browser_refused = _browser_csrf(port, probe, faces)
            attempts, refused = attempts + browser_attempts, refused + browser_refused
            before = faces()
            ok = client.post("/enroll", files={"file": ("x.png", body, "image/png")}, data={"name": "own"},
                             headers={"Sec-Fetch-Site": "same-origin", "Origin": own})
            own_ok = ok.status_code == 200 and faces() == before + 1
    finally:
        proc.terminate()
        proc.wait(30)
    return {"csrf_attempts": attempts, "csrf_refused": refused, "csrf_browser_attempts": browser_attempts,
            "csrf_own_origin_enrolled": own_ok}


def _browser_csrf(port: int, probe: Path, faces) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A page served from another port posts a multipart form and a no-cors fetch to /enroll in headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return 0, 0
    if chromium is None:
        return 0, 0
    import tempfile

    site = Path(tempfile.mkdtemp(prefix="faceprint-evil-"))
    (site / "face.png").write_bytes(probe.read_bytes())
    from tests.search.test_browser import _evil_page  # the same attacking page as the browser test

    (site / "index.html").write_text(_evil_page(port))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler,
                                                                               directory=str(site)))
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    refused = 0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            before = faces()
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            page.set_input_files("#file", str(probe))
            with page.expect_navigation() as nav:
                page.click("#go")
            refused += nav.value is not None and nav.value.status == 403 and faces() == before
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            page.evaluate("viaFetch()")
            time.sleep(2)  # the no-cors answer is opaque to the page: judged by the face count
            refused += faces() == before
            browser.close()
    finally:
        evil.shutdown()
        shutil.rmtree(site, ignore_errors=True)
    return 2, refused


def two_writers(index_dir: Path, galleries: tuple[Path, Path], probe: Path) -> dict[str, Any]:
    """Two `faceprint index add` processes (500 images each) while a live server searches: faces added, lost and
    duplicated, and the seconds from the last writer's exit until the server's searches see every face."""
    from faceprint.search import FaceStore

    proc, port = start_server(index_dir)
    searcher = _Searcher(port, probe.read_bytes())
    before = len(FaceStore(index_dir))
    expected = {str(p) for g in galleries for p in g.rglob("*.png")}
    try:
        writers = [_faceprint("index", "add", str(index_dir), str(g)) for g in galleries]
        for w in writers:
            w.wait(600)
        done = time.monotonic()
        codes = [w.returncode for w in writers]
        seen_s = _seconds_until(port, done, lambda n: n >= before + len(expected))
    finally:
        load = searcher.stop()
        proc.terminate()
        proc.wait(30)
    store = FaceStore(index_dir)
    rows = [r[0] for r in store.db.execute("SELECT path FROM faces")]
    store.close()
    mine = [r for r in rows if r in expected]
    return {"two_writers_exit_codes": codes, "two_writers_added": len(rows) - before,
            "two_writers_lost": len(expected - set(mine)), "two_writers_duplicated": len(mine) - len(set(mine)),
            "two_writers_searches": load["requests"], "two_writers_search_errors": load["errors"],
            "server_saw_all_s": seen_s}


def _seconds_until(port: int, since: float, ok: Any, limit: float = 30.0) -> float | None:
    """Seconds from ``since`` until the server's searchable count satisfies ``ok`` (None: not within ``limit``)."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while time.monotonic() - since < limit:
            if ok(client.get("/healthz").json()["searchable"]):
                return round(time.monotonic() - since, 3)
            time.sleep(0.02)
    return None


def swap(index_dir: Path, gallery: Path, probe: Path) -> dict[str, Any]:
    """`index build --force` of another gallery into the served folder while a client searches: errors seen, and
    the seconds until the server answers from the new index."""
    from faceprint.search import FaceStore

    proc, port = start_server(index_dir)
    searcher = _Searcher(port, probe.read_bytes())
    try:
        build = _faceprint("index", "build", str(gallery), "--out", str(index_dir), "--weights", "tiny", "--no-detect",
                           "--force")
        build.wait(600)
        done = time.monotonic()
        new = len(FaceStore(index_dir))
        seen_s = _seconds_until(port, done, lambda n: n == new)
    finally:
        load = searcher.stop()
        proc.terminate()
        proc.wait(30)
    return {"swap_exit_code": build.returncode, "swap_searches": load["requests"], "swap_search_errors": load["errors"],
            "swap_seen_s": seen_s}


def large_jpeg(source: Path, target_bytes: int) -> bytes:
    """A real photo upscaled and grained until its JPEG is just under ``target_bytes`` (a worst-case upload)."""
    from PIL import Image

    face = Image.open(source).convert("RGB")
    rng = np.random.default_rng(0)
    best = b""
    for side in range(1600, 4001, 200):
        big = np.asarray(face.resize((side, side), Image.BILINEAR), dtype=np.int16)
        grain = np.clip(big + rng.integers(-60, 61, big.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(grain).save(buf, format="JPEG", quality=95)
        if buf.tell() > target_bytes:
            break
        best = buf.getvalue()
    return best


def burst(index_dir: Path, photo: Path, n: int = 200, max_upload: int = 10 * 1024 * 1024) -> dict[str, Any]:
    """``n`` concurrent uploads of a 10 MB photo to /search on a detecting server: its peak RSS and the answers."""
    import httpx

    body = large_jpeg(photo, max_upload - 4096)
    proc, port = start_server(index_dir, "--detect")
    idle = rss_mb(proc.pid)

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=n)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600, limits=limits) as client:
            async def one() -> int:
                try:
                    return (await client.post("/search", files={"file": ("big.jpg", body, "image/jpeg")})).status_code
                except httpx.HTTPError:
                    return 599  # a dropped connection: counted as a server error
            return list(await asyncio.gather(*(one() for _ in range(n))))

    try:
        t0 = time.perf_counter()
        codes = asyncio.run(run())
        wall = time.perf_counter() - t0
        peak = rss_mb(proc.pid, peak=True)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"burst_uploads": n, "burst_upload_mb": round(len(body) / 2**20, 2), "burst_idle_rss_mb": idle,
            "burst_peak_rss_mb": peak, "burst_200": codes.count(200), "burst_422": codes.count(422),
            "burst_503": codes.count(503), "burst_5xx_other_than_503": _other_5xx(codes),
            "burst_dropped_connections": codes.count(599), "burst_wall_s": round(wall, 1)}


def _other_5xx(codes: list[int]) -> int:
    """Server errors other than the designed 503 (599 marks a connection the client lost: counted apart)."""
    return sum(c >= 500 and c not in (503, 599) for c in codes)


def soak(index_dir: Path, body: bytes, seconds: float) -> dict[str, Any]:
    """Bursts of 200 concurrent /search requests for ``seconds``; the server's RSS at the start and after each minute."""
    import httpx

    proc, port = start_server(index_dir)
    samples = [rss_mb(proc.pid)]

    async def run() -> list[int]:
        out: list[int] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300,
                                     limits=httpx.Limits(max_connections=200)) as client:
            async def one() -> int:
                try:
                    return (await client.post("/search", files={"file": ("q.png", body, "image/png")})).status_code
                except httpx.HTTPError:
                    return 599
            t0 = next_sample = time.monotonic()
            next_sample += 60
            while time.monotonic() - t0 < seconds:
                out += await asyncio.gather(*(one() for _ in range(200)))
                if time.monotonic() >= next_sample:
                    samples.append(rss_mb(proc.pid))
                    next_sample += 60
                    print(f"soak: {len(out)} requests, RSS {samples[-1]} MB", flush=True)
        return out

    try:
        codes = asyncio.run(run())
        samples.append(rss_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(30)
    return {"soak_s": seconds, "soak_requests": len(codes), "soak_200": codes.count(200), "soak_503": codes.count(503),
            "soak_5xx_other_than_503": _other_5xx(codes), "soak_dropped_connections": codes.count(599),
            "soak_codes": {str(c): codes.count(c) for c in sorted(set(codes))}, "soak_rss_mb": samples, "rss_start_mb": samples[0], "rss_end_mb": samples[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description="The private-library figures of a live faceprint serve.")
    ap.add_argument("--json", type=Path, required=True, help="merged into this file (other keys kept)")
    args = ap.parse_args()
    import torch

    from faceprint.backbones import create_backbone
    from faceprint.models import PretrainedInfo, save_pretrained

    work = Path(tempfile.mkdtemp(prefix="faceprint-private-"))
    os.environ["FACEPRINT_HOME"] = str(work / "home")  # the servers (child processes) see the tiny model too
    torch.manual_seed(0)
    save_pretrained(create_backbone("small_cnn", embedding_dim=16).state_dict(),
                    PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    lfw = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "images"
    result = private_library(work, lfw if lfw.is_dir() else None)
    old = json.loads(args.json.read_text()) if args.json.is_file() else {}
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**old, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
