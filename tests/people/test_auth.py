"""Who may use a served library: every route of the app closed without credentials, roles, sessions that end,
CSRF, login rate limits, and bodies never read for a request that is refused."""

from __future__ import annotations

import asyncio
import shutil
import io
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceprint.people import open_library
from faceprint.serve import ServeConfig, create_app
from faceprint.serve.accounts import Accounts
from faceprint.serve.policy import Policy, needed_role
from tests.people.conftest import PatternNet


@pytest.fixture()
def lib_app(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A library of 3 people (4 photos each) served by an app, with users ann (editor), vic (viewer), root (admin)."""
    emb = PatternNet.embedder()
    rng = np.random.default_rng(0)
    files = []
    for who, pattern in enumerate(PatternNet.patterns(3, seed=3)):
        for k in range(4):
            f = tmp_path / "in" / f"{who}-{k}.png"
            f.parent.mkdir(exist_ok=True)
            PatternNet.image(pattern, rng).save(f)
            files.append(f)
    lib = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=emb, detect=False)
    lib.add_photos(files)
    accounts = Accounts(tmp_path / "lib")
    for name, role in (("ann", "editor"), ("vic", "viewer"), ("root", "admin")):
        accounts.add_user(name, f"{name}-password", role)
    app = create_app(tmp_path / "lib", index=lib.index)
    yield app, accounts, lib
    lib.close()


def _login(c: TestClient, name: str) -> dict[str, str]:
    r = c.post("/login", json={"name": name, "password": f"{name}-password"})
    assert r.status_code == 200, r.text
    return {"x-csrf-token": c.cookies["faceprint_csrf"]}


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every (method, url) of the app's route table, path parameters filled with 1."""
    out = []
    for r in app.routes:
        for m in sorted(getattr(r, "methods", None) or ()):
            if m != "HEAD":
                out.append((m, r.path.replace("{person}", "1").replace("{photo}", "1").replace("{face_id}", "1")
                            .replace("{name}", "vic")))
    return out


def test_every_route_is_closed_without_credentials(lib_app) -> None:  # type: ignore[no-untyped-def]
    app, accounts, _ = lib_app
    c = TestClient(app)
    routes = _routes(app)
    assert len(routes) >= 25 and ("GET", "/photo/1") in routes and ("POST", "/api/faces/split") in routes
    before = c.get("/healthz", headers={"x-api-key": accounts.create_key("viewer")[1]}).json()["faces"]
    for method, url in routes:
        if needed_role(method, url) is None:
            continue  # the login page and the login itself
        plain = c.request(method, url, json={}, follow_redirects=False)
        assert plain.status_code in (401, 303), (method, url, plain.status_code)
        if plain.status_code == 303:  # a page: to the login page, and only for safe methods
            assert method == "GET" and plain.headers["location"].startswith("/login?next=")
        wrong = c.request(method, url, json={}, headers={"Authorization": "Bearer fp_nope_nope"}, follow_redirects=False)
        assert wrong.status_code == plain.status_code, (method, url)
        assert wrong.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in wrong.headers["content-security-policy"]
    assert c.get("/healthz", headers={"x-api-key": accounts.create_key("viewer")[1]}).json()["faces"] == before


def test_roles_sessions_and_csrf(lib_app) -> None:  # type: ignore[no-untyped-def]
    app, accounts, lib = lib_app
    person = lib.people()[0].id
    viewer = TestClient(app)
    _login(viewer, "vic")
    assert viewer.get("/api/people").status_code == 200
    csrf = {"x-csrf-token": viewer.cookies["faceprint_csrf"]}
    r = viewer.post(f"/api/people/{person}/name", json={"name": "Eve"}, headers=csrf)
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    assert viewer.get("/api/users").status_code == 403  # admins only

    editor = TestClient(app)
    csrf = _login(editor, "ann")
    assert editor.post(f"/api/people/{person}/name", json={"name": "Eve"}).status_code == 403  # no CSRF token
    assert editor.post(f"/api/people/{person}/name", json={"name": "Eve"}, headers={"x-csrf-token": "x" * 32}).status_code == 403
    crossed = editor.post(f"/api/people/{person}/name", json={"name": "Eve"}, headers={**csrf, "Sec-Fetch-Site": "cross-site"})
    assert crossed.status_code == 403
    assert lib.person(person).name is None  # nothing written so far
    assert editor.post(f"/api/people/{person}/name", json={"name": "Eve"}, headers=csrf).status_code == 200
    assert lib.person(person).name == "Eve"

    # logging out ends the session on the server: the old cookie, replayed, is refused
    old = editor.cookies["faceprint_session"]
    assert editor.post("/logout", headers=csrf).status_code == 200
    replay = TestClient(app, cookies={"faceprint_session": old})
    assert replay.get("/api/people").status_code == 401
    # an expired session is refused; so are sessions of a changed password and of a removed user
    _login(editor, "ann")
    with sqlite3.connect(accounts.path) as db:
        db.execute("UPDATE sessions SET expires = ? WHERE user = 'ann'", (time.time() - 1,))
    assert editor.get("/api/people").status_code == 401
    _login(editor, "ann")
    accounts.set_password("ann", "another-password")
    assert editor.get("/api/people").status_code == 401
    assert viewer.get("/api/people").status_code == 200
    accounts.remove_user("vic")
    assert viewer.get("/api/people").status_code == 401


def test_keys_and_the_admin_routes(lib_app) -> None:  # type: ignore[no-untyped-def]
    app, accounts, lib = lib_app
    c = TestClient(app)
    kid, key = accounts.create_key("editor", "a script")
    person = lib.people()[1].id
    assert c.post(f"/api/people/{person}/name", json={"name": "Kay"}, headers={"x-api-key": key}).status_code == 200
    assert c.get("/api/users", headers={"Authorization": f"Bearer {key}"}).status_code == 403
    accounts.revoke_key(kid)
    assert c.get("/api/people", headers={"x-api-key": key}).status_code == 401
    admin = TestClient(app)
    csrf = _login(admin, "root")
    assert admin.post("/api/users", json={"name": "new", "password": "new-password", "role": "viewer"}, headers=csrf).status_code == 200
    assert ("new", "viewer") in admin.get("/api/users").json()["users"] or \
        {"name": "new", "role": "viewer"} in admin.get("/api/users").json()["users"]
    # nothing secret in clear on disk: not the passwords, not the key
    raw = accounts.path.read_bytes() + (accounts.path.with_name("auth.sqlite-wal").read_bytes()
                                        if accounts.path.with_name("auth.sqlite-wal").exists() else b"")
    assert b"ann-password" not in raw and b"new-password" not in raw and key.encode() not in raw


def test_login_attempts_are_limited_before_the_password_is_checked(lib_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app, accounts, _ = lib_app
    checked = []
    real = Accounts.check_password

    def spy(self, name, password):  # type: ignore[no-untyped-def]
        checked.append(name)
        return real(self, name, password)

    monkeypatch.setattr(Accounts, "check_password", spy)
    c = TestClient(app)
    codes = [c.post("/login", json={"name": "ann", "password": f"guess{i}"}).status_code for i in range(30)]
    assert len(checked) <= 10 and codes.count(401) == len(checked) and codes.count(429) == 30 - len(checked)
    limited = c.post("/login", json={"name": "ann", "password": "ann-password"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1  # even the right one waits
    assert len(checked) <= 10


def test_a_refused_request_never_has_its_body_read(tmp_path: Path) -> None:
    """The policy answers 401 without calling receive(): a 21 MB body from a stranger is never pulled."""
    accounts = Accounts(tmp_path)
    reached, pulled, sent = [], [0], []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(scope["path"])

    async def receive():  # type: ignore[no-untyped-def]
        pulled[0] += 1
        return {"type": "http.request", "body": b"[" * 65536, "more_body": True}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    policy = Policy(app, accounts, required=True)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(21 << 20).encode())]
    asyncio.run(policy({"type": "http", "method": "POST", "path": "/api/faces/split", "headers": headers,
                        "query_string": b""}, receive, send))
    assert reached == [] and pulled == [0] and sent[0]["status"] == 401


def test_json_bodies_are_capped(lib_app) -> None:  # type: ignore[no-untyped-def]
    app, accounts, lib = lib_app
    c = TestClient(app, headers={"x-api-key": accounts.create_key("editor")[1]})
    big = {"faces": list(range(20_000))}  # ~130 KB of JSON
    r = c.post("/api/faces/dismiss", json=big)
    assert r.status_code == 413
    assert lib.stats()["waiting"] == 0 and sum(p.faces for p in lib.people()) == 12  # nothing happened


def test_pages_of_people_faces_and_photos(lib_app) -> None:  # type: ignore[no-untyped-def]
    app, accounts, lib = lib_app
    c = TestClient(app, headers={"x-api-key": accounts.create_key("viewer")[1]})
    everyone = c.get("/api/people").json()
    assert everyone["next"] is None
    seen, cursor = [], None
    while True:
        page = c.get("/api/people", params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["people"]) == 1
        seen += [p["id"] for p in page["people"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [p["id"] for p in everyone["people"]]
    pid = seen[0]
    faces, cursor, first = [], None, None
    while True:
        page = c.get(f"/api/people/{pid}", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        first = first or page
        faces += [f["id"] for f in page["faces_list"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert faces == [f.id for f in lib.faces_of(pid)] and len(faces) == 4
    photos = c.get("/api/photos", params={"people": pid, "limit": 2}).json()
    rest = c.get("/api/photos", params={"people": pid, "limit": 2, "cursor": photos["next"]}).json()
    assert [p["id"] for p in photos["photos"] + rest["photos"]] == [p.id for p in lib.photos_with([pid])]
    assert photos["people"] == [{"id": pid, "name": None}]
    assert c.get("/api/people", params={"cursor": "not-ours"}).status_code == 422
    assert c.get("/api/people", params={"limit": 100_000}).status_code == 422


def test_health_never_catches_up(lib_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app, accounts, lib = lib_app
    store = app.state.index.store
    monkeypatch.setattr(type(store), "refresh", lambda self: pytest.fail("/healthz caught up"))
    c = TestClient(app, headers={"x-api-key": accounts.create_key("viewer")[1]})
    assert c.get("/healthz").json()["faces"] == 12


def test_the_swap_of_build_force_keeps_users(tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    from faceprint.data.synth import write_synthetic_dataset
    from faceprint.search import build_index

    data = write_synthetic_dataset(tmp_path / "faces", identities=3, images_per_identity=2, size=32, seed=0)
    build_index(data, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    Accounts(tmp_path / "ix").add_user("ann", "ann-password", "editor")
    build_index(data, tmp_path / "ix", {"weights": tiny_weights}, detect=False, force=True)[0].close()
    assert Accounts(tmp_path / "ix").users() == [("ann", "editor")]
    assert Accounts(tmp_path / "ix").check_password("ann", "ann-password") == "editor"


def test_users_and_keys_commands(tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from faceprint.cli.main import app
    from faceprint.data.synth import write_synthetic_dataset
    from faceprint.search import build_index

    data = write_synthetic_dataset(tmp_path / "faces", identities=2, images_per_identity=2, size=32, seed=0)
    build_index(data, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    run = CliRunner().invoke
    ix = str(tmp_path / "ix")
    assert run(app, ["users", "add", ix, "ann", "--role", "editor"], input="s3cret-pass\n").exit_code == 0
    r = run(app, ["users", "add", ix, "bob"], input="short\n")
    assert r.exit_code != 0 and "8 characters" in str(r.exception or r.output)
    assert run(app, ["users", "list", ix]).stdout.split() == ["ann", "editor"]
    made = run(app, ["keys", "create", ix, "--role", "viewer", "--label", "cron"])
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("fp_") and key not in run(app, ["keys", "list", ix]).stdout
    assert Accounts(tmp_path / "ix").key(key).role == "viewer"
    assert run(app, ["users", "add", str(tmp_path / "nowhere"), "x"], input="password1\n").exit_code != 0


def test_uploads_embed_at_most_max_faces(lib_app) -> None:  # type: ignore[no-untyped-def]
    """A photo with more faces than the cap: the largest are embedded, the answer counts the rest."""
    from faceprint.models.pipeline import FaceCrop
    from faceprint.serve.batcher import ModelBatcher

    app, _, lib = lib_app
    embedded = []

    class Many:
        def crops_many(self, images, all_faces=True):  # type: ignore[no-untyped-def]
            return [[FaceCrop(im, [0.0, 0.0, 40.0 - k / 10, 40.0 - k / 10], 0.99) for k in range(300)] for im in images]

        def embed_crops(self, crops):  # type: ignore[no-untyped-def]
            embedded.append(len(crops))
            return np.zeros((len(crops), 48), np.float32)

    batcher = ModelBatcher(Many(), max_batch=4)  # type: ignore[arg-type]
    from PIL import Image

    crops, vecs, found = batcher.submit(Image.new("RGB", (64, 64)), True, 50).result(30)
    batcher.close()
    assert (len(crops), len(vecs), found, embedded) == (50, 50, 300, [50])
    assert crops[0].box[2] == 40.0  # the largest kept
    # through the server: /api/who of a photo with 300 faces answers for the 2 largest and counts the other 298
    served = create_app(lib.index.store.root, ServeConfig(max_faces=2), index=lib.index)
    served.state.model.faces = Many()
    c = TestClient(served, headers={"x-api-key": Accounts(lib.index.store.root).create_key("viewer")[1]})
    buf = io.BytesIO()
    PatternNet.image(PatternNet.patterns(1)[0], np.random.default_rng(0)).save(buf, format="PNG")
    out = c.post("/api/who", files={"file": ("q.png", buf.getvalue(), "image/png")}).json()
    assert len(out["faces"]) == 2 and out["faces_skipped"] == 298 and embedded[-1] == 2


def test_roles_follow_the_route_under_a_root_path_and_every_edit_refuses_a_viewer(lib_app) -> None:  # type: ignore[no-untyped-def]
    app, accounts, _ = lib_app
    viewer = accounts.create_key("viewer")[1]
    c = TestClient(app, headers={"x-api-key": viewer})
    refused = 0
    for method, url in _routes(app):
        if needed_role(method, url) in ("editor", "admin"):
            r = c.request(method, url, json={"name": "x", "faces": [1], "sources": [2], "person": 2})
            assert r.status_code == 403, (method, url, r.status_code)
            refused += 1
    assert refused == 12  # enroll, the 8 people edits and the 3 user routes
    reached, sent = [], []

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(scope["path"])

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    for path, root in (("/x/api/users", "/x"), ("/api/users", "/ap")):  # mounted under /x; a root that is no prefix
        scope = {"type": "http", "method": "GET", "path": path, "root_path": root, "query_string": b"",
                 "headers": [(b"x-api-key", viewer.encode())]}  # the route is /api/users either way
        sent.clear()
        asyncio.run(Policy(inner, accounts)(scope, lambda: None, send))  # type: ignore[arg-type]
        assert reached == [] and sent[0]["status"] == 403, (path, root)


def test_login_bodies_get_the_small_cap_and_ended_sessions_go_to_the_login_page(lib_app) -> None:  # type: ignore[no-untyped-def]
    app, accounts, _ = lib_app
    c = TestClient(app)
    big = {"file": ("x.bin", b"\0" * 300_000, "application/octet-stream")}  # multipart, but /login takes no upload
    assert c.post("/login", files=big).status_code == 413
    _login(c, "ann")
    token = c.cookies["faceprint_session"]
    accounts.end_session(token)
    r = c.get("/people", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/people"
    old = TestClient(app, cookies={"faceprint_session": "x" * 40})
    assert old.get("/api/people").status_code == 401  # the API answers 401 (no redirect for programs)
    # a new login ends the session the browser held before
    _login(c, "ann")
    first = c.cookies["faceprint_session"]
    _login(c, "ann")
    assert accounts.session(first) is None and accounts.session(c.cookies["faceprint_session"]) is not None
    import base64

    huge = c.get("/api/people/1", params={"cursor": base64.urlsafe_b64encode(b"f" + b"9" * 30).decode()})
    assert huge.status_code == 422


def test_login_limits_per_account_per_client_and_bounded() -> None:
    from faceprint.serve.policy import LoginLimiter

    lim = LoginLimiter()
    assert sum(lim.take("root", f"10.0.0.{i}") == 0 for i in range(100)) <= 10  # many clients, one account
    lim = LoginLimiter()
    assert sum(lim.take(f"user{i}", "10.0.0.1") == 0 for i in range(100)) <= 10  # one client, many names
    lim = LoginLimiter()
    assert sum(lim.take("ann", "10.0.0.1") == 0 for _ in range(100)) == 5  # one client, one account
    assert lim.take("ann", "10.0.0.2") == 0  # ann still logs in from elsewhere while one client is held off
    lim = LoginLimiter(max_keys=50)
    spent = sum(lim.take("root", f"10.1.0.{i}") == 0 for i in range(20))  # root's account bucket spent ...
    for i in range(500):  # ... then junk names from fresh addresses fill the table past its bound
        lim.take(f"user{i}", f"10.0.{i}.1")
    assert len(lim._buckets) <= 50
    assert spent == 10 and lim.take("root", "10.2.0.1") > 0  # root's spent bucket was not the one forgotten


def test_an_open_server_answers_no_proxied_request(tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    from faceprint.data.synth import write_synthetic_dataset
    from faceprint.search import build_index

    data = write_synthetic_dataset(tmp_path / "faces", identities=2, images_per_identity=2, size=32, seed=0)
    build_index(data, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    c = TestClient(create_app(tmp_path / "ix"))
    assert c.get("/healthz").status_code == 200  # no users, no keys: open on this machine
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Proto", "Via"):
        assert c.get("/healthz", headers={header: "203.0.113.9"}).status_code == 401, header


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_serve_over_tls_sets_secure_cookies(tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    """`faceprint serve --certfile --keyfile` on 127.0.0.1: https answers, plain http does not, cookies are Secure."""
    import os
    import ssl
    import subprocess
    import sys

    import httpx

    from faceprint.data.synth import write_synthetic_dataset
    from faceprint.search import build_index
    data = write_synthetic_dataset(tmp_path / "faces", identities=2, images_per_identity=2, size=32, seed=0)
    build_index(data, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    Accounts(tmp_path / "ix").add_user("ann", "ann-password", "viewer")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "faceprint", "serve", str(tmp_path / "ix"), "--port", str(port),
                             "--certfile", str(cert), "--keyfile", str(key)], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as c:
            for _ in range(240):
                try:
                    if c.get("/healthz").status_code == 401:
                        break
                except httpx.HTTPError:
                    time.sleep(0.25)
            r = c.post("/login", json={"name": "ann", "password": "ann-password"})
            assert r.status_code == 200, r.text
            cookies = r.headers.get_list("set-cookie")
            assert len(cookies) == 2 and all("Secure" in v for v in cookies)
            assert c.get("/api/me").json()["name"] == "ann"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # no plain http on the TLS port
    finally:
        proc.terminate()
        proc.wait(30)
