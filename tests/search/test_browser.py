"""A real browser: start the server on 127.0.0.1, upload a photo in headless Chromium, see the matches render.

Needs the Debian ``chromium`` package (CI installs it); skipped with a reason when it is absent.
The screenshot is kept under tests/artifacts/ (ignored by git) for a human to look at.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from faceprint.search import build_index

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_upload_in_a_real_browser(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    uvicorn = pytest.importorskip("uvicorn")
    from faceprint.serve import create_app

    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(tmp_path / "ix"), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    probe = sorted(tiny_faces.rglob("*.png"))[10]
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#file", str(probe))
            page.wait_for_selector(".match", timeout=30_000)
            names = page.locator(".match .name").all_inner_texts()
            verdicts = page.locator(".match .verdict").all_inner_texts()
            assert len(names) == 5 and names[0] == probe.parent.name and verdicts[0] == "same"
            first_thumb = page.locator(".match img").first
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first_thumb.element_handle())
            assert "face(s)" in page.inner_text("#status")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "search_page.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert (ARTIFACTS / "search_page.png").stat().st_size > 1000
