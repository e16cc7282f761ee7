"""A real browser: start the server on 127.0.0.1, upload a photo in headless Chromium, see the matches render.

Needs the Debian ``chromium`` package (CI installs it); skipped with a reason when it is absent.
The screenshot is kept under tests/artifacts/ (ignored by git) for a human to look at.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from faceprint.search import build_index
from tests.search.conftest import live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_upload_in_a_real_browser(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    from faceprint.serve import create_app

    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    probe = sorted(tiny_faces.rglob("*.png"))[10]
    with live_server(create_app(tmp_path / "ix")) as port, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))
        page.goto(f"http://127.0.0.1:{port}/")
        page.set_input_files("#file", str(probe))
        page.wait_for_selector(".match", timeout=30_000)
        names = page.locator(".match .name").all_inner_texts()
        verdicts = page.locator(".match .verdict").all_inner_texts()
        assert len(names) == 5 and names[0] == probe.parent.name and verdicts[0] == "same"
        first_thumb = page.locator(".match img").first
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first_thumb.element_handle())
        assert re.search(r"\d+ faces?;", page.inner_text("#status"))
        assert not [u for u in asked if "/api/people" in u]  # a plain index: the page asks for no people API
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "search_page.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "search_page.png").stat().st_size > 1000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_another_origin_cannot_enroll_in_a_real_browser(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """A page on another origin (another port of 127.0.0.1) posts a form and a fetch to /enroll: both reach the
    server and are refused, nothing is added; the server's own page enrols."""
    import functools
    import http.server

    playwright = pytest.importorskip("playwright.sync_api")
    from faceprint.serve import create_app

    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    app, seen = create_app(tmp_path / "ix"), []

    @app.middleware("http")
    async def record(request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        if request.url.path == "/enroll":
            seen.append((request.headers.get("sec-fetch-site"), response.status_code))
        return response

    probe = sorted(tiny_faces.rglob("*.png"))[10]
    site = tmp_path / "evil"
    site.mkdir()
    (site / "face.png").write_bytes(probe.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    evil_port = evil.server_address[1]
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    store = app.state.index.store
    before = len(store)
    try:
        with live_server(app) as port, playwright.sync_playwright() as p:
            (site / "index.html").write_text(_evil_page(port))
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{evil_port}/")
            page.set_input_files("#file", str(probe))
            with page.expect_navigation():
                page.click("#go")
            page.goto(f"http://127.0.0.1:{evil_port}/")
            assert page.evaluate("viaFetch()") == "sent"
            for _ in range(50):  # the no-cors fetch resolves before the server has answered
                if len(seen) >= 2:
                    break
                time.sleep(0.1)
            assert len(store) == before
            assert seen == [("cross-site", 403), ("cross-site", 403)] or seen == [("same-site", 403), ("same-site", 403)]
            page.goto(f"http://127.0.0.1:{port}/")  # the server's own page
            page.fill("#enroll-name", "Ada")
            page.set_input_files("#enroll-file", str(probe))
            page.click("#enroll-go")
            page.wait_for_function("() => document.querySelector('#enroll-status').textContent.includes('enrolled')",
                                   timeout=30_000)
            browser.close()
    finally:
        evil.shutdown()
    from faceprint.search import FaceStore

    assert len(FaceStore(tmp_path / "ix")) == before + 1 and seen[-1] == ("same-origin", 200)  # (the server closed its own)


def _evil_page(port: int) -> str:
    """Another site's page: a multipart form and a no-cors fetch aimed at the faceprint server on ``port``."""
    return f"""<html><body>
<form id="f" action="http://127.0.0.1:{port}/enroll" method="post" enctype="multipart/form-data">
<input name="name" value="mallory"><input id="file" type="file" name="file"><button id="go">go</button></form>
<script>
async function viaFetch() {{
  const blob = await (await fetch("/face.png")).blob();
  const form = new FormData(); form.append("name", "mallory2"); form.append("file", blob, "x.png");
  // the request reaches the server; its answer is withheld from this page (Cross-Origin-Resource-Policy)
  await fetch("http://127.0.0.1:{port}/enroll", {{method: "POST", body: form, mode: "no-cors"}}).catch(() => null);
  return "sent";
}}
</script></body></html>"""
