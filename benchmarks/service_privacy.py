"""A private library on a live `faceprint serve`: every route without credentials, a brute-forced login, JSON
bombs from strangers, a photo tiled with faces, and framing (for benchmarks/service_faults.py).

- unauth_attempts / unauth_refused: every (method, path) of the app's route table, each tried without credentials,
  with a wrong key and with an expired session; those that change things also with a viewer's session (with its
  CSRF token) and a viewer's key. Refused: 401/403, or for a page a redirect to /login; and the library unchanged.
- login_bruteforce_attempts / login_bruteforce_allowed: rapid wrong passwords for one account; allowed = answers
  other than 429 (each one a password actually checked).
- json_bomb_peak_rss_mb: 32 concurrent 21 MB JSON bodies without credentials; the server's peak RSS (VmHWM) and
  its idle RSS before. json_bomb_authed_peak_rss_mb: the same bodies with an editor's key (413 before reading).
- many_faces_upload_s: one 2048² photo tiled with 40-pixel LFW faces to /api/who on a detecting server.
- framable_pages: pages served without X-Frame-Options: DENY and CSP frame-ancestors 'none'.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from common import start_server  # noqa: E402 - benchmarks/ is on sys.path

__all__ = ["private_library"]


def _rss_mb(pid: int, peak: bool = False) -> int:
    key = "VmHWM:" if peak else "VmRSS:"
    return int(Path(f"/proc/{pid}/status").read_text().split(key)[1].split()[0]) // 1024


def _routes(lib_dir: Path) -> list[tuple[str, str]]:
    """(method, url) of every route of the app serving ``lib_dir``, path parameters filled in."""
    from faceprint.serve import create_app

    app = create_app(lib_dir)
    out = []
    for r in app.routes:
        for m in sorted(getattr(r, "methods", None) or ()):
            url = r.path
            for name, value in (("{person}", "1"), ("{photo}", "1"), ("{face_id}", "1"), ("{name}", "vic")):
                url = url.replace(name, value)
            out.append((m, url))
    app.state.model.close()
    app.state.index.close()
    return out


def _build(work: Path) -> Path:
    from faceprint.data.synth import write_synthetic_dataset
    from faceprint.people import open_library
    from faceprint.serve.accounts import Accounts

    photos = write_synthetic_dataset(work / "priv-photos", identities=4, images_per_identity=4, size=32, seed=9)
    lib = open_library(work / "priv", {"weights": "tiny"}, detect=False)
    lib.add_photos(sorted(photos.rglob("*.png")))
    lib.close()
    accounts = Accounts(work / "priv")
    for name, role in (("ann", "editor"), ("vic", "viewer"), ("root", "admin")):
        accounts.add_user(name, f"{name}-password-1", role)
    return work / "priv"


def _state(lib_dir: Path) -> tuple[Any, ...]:
    with sqlite3.connect(lib_dir / "faces.sqlite") as db:
        return (db.execute("SELECT COUNT(*) FROM faces").fetchone(), db.execute("SELECT * FROM people").fetchall(),
                db.execute("SELECT * FROM face_people ORDER BY face_id").fetchall())


def _unauthorised(lib_dir: Path, port: int) -> dict[str, Any]:
    import httpx

    from faceprint.serve.accounts import Accounts
    from faceprint.serve.policy import needed_role

    accounts = Accounts(lib_dir)
    expired, _ = accounts.start_session("ann")
    with sqlite3.connect(accounts.path) as db:
        db.execute("UPDATE sessions SET expires = ?", (time.time() - 1,))
    viewer_token, viewer_csrf = accounts.start_session("vic")
    viewer_key = accounts.create_key("viewer", "benchmark")[1]
    ways = {"none": ({}, {}), "wrong_key": ({"Authorization": "Bearer fp_0000_wrong"}, {}),
            "expired_session": ({}, {"faceprint_session": expired})}
    edits = {"viewer_session": ({"x-csrf-token": viewer_csrf}, {"faceprint_session": viewer_token}),
             "viewer_key": ({"x-api-key": viewer_key}, {})}
    before = _state(lib_dir)
    attempts = refused = 0
    leaks = []
    for method, url in _routes(lib_dir):
        role = needed_role(method, url)
        if role is None:
            continue  # the login page and the login itself: the way in
        tries = {**ways, **(edits if role != "viewer" else {})}
        for how, (headers, cookies) in tries.items():
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, cookies=cookies) as client:
                r = client.request(method, url, headers=headers, json={"name": "Mallory", "faces": [1], "sources": [2],
                                                                       "person": 2, "password": "x" * 8, "role": "admin"})
            attempts += 1
            ok = r.status_code in (401, 403) or (r.status_code == 303 and r.headers["location"].startswith("/login"))
            refused += ok
            if not ok:
                leaks.append(f"{how} {method} {url} -> {r.status_code}")
    unchanged = _state(lib_dir) == before
    return {"unauth_attempts": attempts, "unauth_refused": refused if unchanged else 0, "unauth_leaks": leaks,
            "unauth_library_unchanged": unchanged}


def _bruteforce(port: int, n: int = 100) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        t0 = time.perf_counter()
        codes = [client.post("/login", json={"name": "ann", "password": f"guess-{i:04d}"}).status_code for i in range(n)]
        wall = time.perf_counter() - t0
    return {"login_bruteforce_attempts": n, "login_bruteforce_allowed": sum(c != 429 for c in codes),
            "login_bruteforce_s": round(wall, 2), "login_bruteforce_codes": {str(c): codes.count(c) for c in sorted(set(codes))}}


def _json_bombs(port: int, pid: int, headers: dict[str, str], n: int = 32, mb: int = 21) -> tuple[int, dict[str, int]]:
    """``n`` concurrent ``mb`` MB JSON bodies ({"faces": [1, 1, ...]}) to a people edit: the peak RSS and the answers."""
    import httpx

    count = (mb * 2**20 - 12) // 3
    body = b'{"faces": [' + b"1, " * (count - 1) + b"1]}"

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                     limits=httpx.Limits(max_connections=n)) as client:
            async def one() -> int:
                try:
                    r = await client.post("/api/faces/split", content=body,
                                          headers={"content-type": "application/json", **headers})
                    return r.status_code
                except httpx.HTTPError:
                    return 599  # the server answered and closed before the body was all sent
            return list(await asyncio.gather(*(one() for _ in range(n))))

    codes = asyncio.run(run())
    return _rss_mb(pid, peak=True), {str(c): codes.count(c) for c in sorted(set(codes))}


def _tiled_faces(lfw: Path, side: int = 2048, face: int = 40) -> bytes:
    """A ``side``² photo tiled with ``face``-pixel LFW faces (the central 120 px of each 250-px image)."""
    import io

    from PIL import Image

    files = sorted(lfw.rglob("*.jpg"))
    canvas = Image.new("RGB", (side, side), (128, 128, 128))
    k = 0
    for y in range(0, side - face + 1, face + 8):
        for x in range(0, side - face + 1, face + 8):
            im = Image.open(files[k % len(files)]).convert("RGB").crop((65, 65, 185, 185)).resize((face, face))
            canvas.paste(im, (x, y))
            k += 1
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _many_faces(lib_dir: Path, lfw: Path | None, key: str) -> dict[str, Any]:
    import httpx

    if lfw is None:
        return {"many_faces_upload_s": None, "many_faces_note": "needs ../shared/data/lfw"}
    body = _tiled_faces(lfw)
    proc, port = start_server(lib_dir, "--detect")
    try:
        t0 = time.perf_counter()
        r = httpx.post(f"http://127.0.0.1:{port}/api/who", files={"file": ("tiled.jpg", body, "image/jpeg")},
                       headers={"x-api-key": key}, timeout=600)
        wall = time.perf_counter() - t0
        out = r.json()
    finally:
        proc.terminate()
        proc.wait(30)
    answered = r.status_code == 200
    return {"many_faces_upload_s": round(wall, 2), "many_faces_status": r.status_code,
            "many_faces_answered": len(out.get("faces", [])) if answered else 0,
            "many_faces_skipped": out.get("faces_skipped") if answered else None}


def _framable(port: int, key: str) -> int:
    import httpx

    bad = 0
    for page in ("/", "/people", "/login", "/docs"):
        r = httpx.get(f"http://127.0.0.1:{port}{page}", headers={"x-api-key": key}, timeout=30)
        csp = r.headers.get("content-security-policy", "")
        bad += not (r.status_code == 200 and r.headers.get("x-frame-options") == "DENY" and "frame-ancestors 'none'" in csp)
    return bad


def private_library(work: Path, lfw: Path | None) -> dict[str, Any]:
    """Every figure above on a synthetic library with three users, served by `faceprint serve` on 127.0.0.1."""
    from faceprint.serve.accounts import Accounts

    lib_dir = _build(work)
    key = Accounts(lib_dir).create_key("editor", "benchmark")[1]
    proc, port = start_server(lib_dir)
    try:
        result = _unauthorised(lib_dir, port)
        result.update(_bruteforce(port))
        idle = _rss_mb(proc.pid)
        peak, codes = _json_bombs(port, proc.pid, {})
        result.update(json_bomb_idle_rss_mb=idle, json_bomb_peak_rss_mb=peak, json_bomb_codes=codes)
        peak, codes = _json_bombs(port, proc.pid, {"x-api-key": key})
        result.update(json_bomb_authed_peak_rss_mb=peak, json_bomb_authed_codes=codes)
        result["framable_pages"] = _framable(port, key)
    finally:
        proc.terminate()
        proc.wait(30)
    result.update(_many_faces(lib_dir, lfw, key))
    return result


if __name__ == "__main__":  # pragma: no cover - run through service_faults.py
    raise SystemExit("run: python benchmarks/service_faults.py --json PATH")

