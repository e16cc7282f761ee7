"""Logging in to a private library in a real browser (headless Chromium) and what another site's page can do with
the user's session: log in, name a person, log out (the old cookie no longer works), and a page of another origin
can neither read the API with the user's cookie nor frame the people page. The pages run under their real CSP
(no bypass): a script the policy blocked would show as a console error, and the pages would not work."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import httpx
import pytest

from faceprint.serve.accounts import Accounts
from tests.people.conftest import live_server
from tests.people.test_browser import ARTIFACTS, CHROMIUM, make_library


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_login_name_logout_and_another_origin(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    from faceprint.serve import create_app

    lib, _, _ = make_library(tmp_path)
    Accounts(tmp_path / "lib").add_user("ann", "ann-password", "editor")
    person = lib.people()[0].id
    app = create_app(tmp_path / "lib", index=lib.index)
    site = tmp_path / "evil"
    site.mkdir()
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler,
                                                                               directory=str(site)))
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    console: list[str] = []
    try:
        with live_server(app) as port, playwright.sync_playwright() as p:
            base = f"http://127.0.0.1:{port}"
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1000, "height": 800})
            page = context.new_page()
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{base}/people")
            assert page.url.startswith(f"{base}/login?next=")  # no session: the login page
            page.fill("#name", "ann")
            page.fill("#password", "wrong-password")
            page.click("#go")
            page.wait_for_function("() => document.querySelector('#status').textContent.includes('wrong')")
            page.fill("#password", "ann-password")
            with page.expect_navigation(url=f"{base}/people"):
                page.click("#go")
            page.wait_for_selector(".card.person")
            assert "ann (editor)" in page.inner_text("#me")
            page.goto(f"{base}/people#/person/{person}")
            page.wait_for_selector("#save-name")
            page.fill("#name", "Alice")
            page.click("#save-name")
            page.wait_for_function("() => document.querySelector('#person-title').textContent.startsWith('Alice')")
            assert lib.person(person).name == "Alice"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "people_logged_in.png"))
            (old,) = [c["value"] for c in context.cookies() if c["name"] == "faceprint_session"]
            assert [c["httpOnly"] for c in context.cookies() if c["name"] == "faceprint_session"] == [True]
            with page.expect_navigation(url=f"{base}/login"):
                page.click("#logout")
            assert httpx.get(f"{base}/api/people", cookies={"faceprint_session": old}).status_code == 401

            # logged in again; then a page of another origin (same host, another port) tries to use the session
            for away in ("/%5Cevil.example/people", "/.//evil.example/people"):  # a `next` leaving the site: not followed
                page.goto(f"{base}/login?next={away}")
                page.fill("#name", "ann")
                page.fill("#password", "ann-password")
                with page.expect_navigation():
                    page.click("#go")
                assert page.url.startswith(f"{base}/"), page.url
            page.goto(f"{base}/people")
            page.wait_for_selector(".card.person")
            ours = [m for m in console if "Content Security Policy" in m]
            assert ours == [], ours  # our own pages never tripped their policy
            (site / "index.html").write_text(_evil_page(base))
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            assert page.evaluate("readPeople()") == "blocked"
            page.wait_for_timeout(500)  # the frame's load settles (blocked: an error page, not ours)
            framed = [f for f in page.frames if f != page.main_frame]
            assert framed and all(f.url == "chrome-error://chromewebdata/" or not f.query_selector(".card")
                                  for f in framed)
            page.screenshot(path=str(ARTIFACTS / "another_origin_framing.png"))
            browser.close()
    finally:
        evil.shutdown()
    assert any("frame-ancestors 'none'" in m for m in console)  # the browser says why the frame stayed empty


def _evil_page(base: str) -> str:
    return f"""<html><body><iframe id="f" src="{base}/people" width="600" height="400"></iframe>
<script>
async function readPeople() {{
  try {{
    const r = await fetch("{base}/api/people", {{credentials: "include"}});
    return "read: " + (await r.text()).slice(0, 80);
  }} catch (e) {{ return "blocked"; }}
}}
</script></body></html>"""
