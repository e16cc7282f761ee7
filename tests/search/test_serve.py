"""The JSON API with FastAPI's TestClient: search, enroll, verify, health, thumbnails and hostile uploads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from faceprint.search import build_index  # noqa: E402
from faceprint.serve import ServeConfig, create_app  # noqa: E402
from tests.search.conftest import live_server  # noqa: E402


@pytest.fixture()
def client(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> TestClient:
    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    return TestClient(create_app(tmp_path / "ix", ServeConfig(max_upload_bytes=200_000, max_pixels=1_000_000)))


def _png(path: Path) -> bytes:
    return path.read_bytes()


def test_search_returns_the_image_itself_first(client: TestClient, tiny_faces: Path) -> None:
    probe = sorted(tiny_faces.rglob("*.png"))[7]
    r = client.post("/search", files={"file": ("x.png", _png(probe), "image/png")}, data={"k": "3"})
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 1 and len(faces[0]["matches"]) == 3
    top = faces[0]["matches"][0]
    assert "path" not in top and top["distance"] < 1e-4 and top["same"] is True  # no server paths by default
    assert top["identity"] == probe.parent.name
    thumb = client.get(top["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_enroll_then_find_and_verify(client: TestClient, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    img = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    r = client.post("/enroll", files={"file": ("new.jpg", buf.getvalue(), "image/jpeg")}, data={"name": "Ada"})
    assert r.status_code == 200, r.text
    r = client.post("/search", files={"file": ("q.jpg", buf.getvalue(), "image/jpeg")}, data={"k": "1"})
    assert r.json()["faces"][0]["matches"][0]["identity"] == "Ada"
    r = client.post("/verify", files={"file_a": ("a.jpg", buf.getvalue(), "image/jpeg"),
                                      "file_b": ("b.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200 and r.json()["same"] is True and r.json()["distance"] < 1e-4
    assert client.get("/healthz").json()["faces"] == 145


def test_hostile_uploads(client: TestClient, tiny_faces: Path) -> None:
    probe = _png(sorted(tiny_faces.rglob("*.png"))[0])
    cases = {
        "text pretending to be a jpeg": (b"hello, not an image", 415),
        "empty": (b"", 415),
        "truncated png": (probe[: len(probe) // 2], 415),
        "too large": (b"\xff" * 300_000, 413),
    }
    for name, (data, code) in cases.items():
        r = client.post("/search", files={"file": ("face.jpg", data, "image/jpeg")})
        assert r.status_code == code, (name, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str)
    bomb = io.BytesIO()
    Image.new("L", (2000, 2000)).save(bomb, format="PNG")  # 4 MP > the 1 MP limit, tiny on the wire
    r = client.post("/search", files={"file": ("b.png", bomb.getvalue(), "image/png")})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert client.post("/search", files={"file": ("x.png", svg, "image/png")}).status_code == 415
    assert client.post("/search", files={"file": ("x.png", probe, "image/png")}, data={"k": "0"}).status_code == 422
    assert client.post("/enroll", files={"file": ("x.png", probe, "image/png")}, data={"name": "../etc"}).status_code == 422


def test_paths_only_when_asked_and_status_by_error_type(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    client = TestClient(create_app(tmp_path / "ix", ServeConfig(show_paths=True, token="sécret")),
                        headers={"x-api-key": "sécret".encode("utf-8")})
    probe = sorted(tiny_faces.rglob("*.png"))[7]
    top = client.post("/search", files={"file": ("x.png", probe.read_bytes(), "image/png")}).json()["faces"][0]["matches"][0]
    assert top["path"] == str(probe)
    # a file *named* like a size problem is still a type problem: the status follows the error, not its text
    r = client.post("/search", files={"file": ("limit bomb.png", b"not an image", "image/png")})
    assert r.status_code == 415 and "limit bomb.png" in r.json()["detail"]
    # a non-ASCII Authorization header is refused (401), not a 500; the right token (UTF-8) is accepted
    for header in ("Bearer sëcret".encode("utf-8"), b"Bearer \xff\xfe"):
        r = client.post("/enroll", files={"file": ("x.png", probe.read_bytes(), "image/png")}, data={"name": "A"},
                        headers={"Authorization": header})
        assert r.status_code == 401, r.text
    r = client.post("/enroll", files={"file": ("x.png", probe.read_bytes(), "image/png")}, data={"name": "A"},
                    headers={"Authorization": "Bearer sécret".encode("utf-8")})
    assert r.status_code == 200, r.text


def test_thumbnails_only_from_the_store(client: TestClient) -> None:
    assert client.get("/thumb/999999").status_code == 404
    assert client.get("/thumb/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    # "/thumb/../faces.sqlite" is sent raw (a client normalises it away) by the live-server test below
    index = client.app.state.index  # type: ignore[attr-defined]
    assert client.get("/thumb/1").status_code == 200
    index.store.remove(ids=[1])  # a removed face's thumbnail is not served, even if its file is still there
    (index.store.root / "thumbs" / "1.jpg").write_bytes(b"a leftover thumbnail")
    assert client.get("/thumb/1").status_code == 404


def test_no_face_is_a_clear_422(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    build_index(tiny_faces, tmp_path / "ix2", {"weights": tiny_weights}, detect=False)[0].close()
    from faceprint.search import open_index

    index = open_index(tmp_path / "ix2")
    index.faces = type(index.faces)(index.faces.embedder, detect=True)  # query with MTCNN: a blank photo has no face
    client = TestClient(create_app(tmp_path / "ix2", index=index))
    buf = io.BytesIO()
    Image.new("RGB", (120, 120), (200, 200, 200)).save(buf, format="PNG")
    r = client.post("/search", files={"file": ("blank.png", buf.getvalue(), "image/png")})
    assert r.status_code == 422 and r.json()["detail"] == "no face found in the photo"


def test_openapi_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/enroll", "/verify", "/healthz"} <= set(paths)
    assert "faceprint" in client.get("/").text


def test_cross_site_writes_are_refused(client: TestClient, tiny_faces: Path) -> None:
    """What a browser adds to another site's form post or fetch (Sec-Fetch-Site, Origin) is refused before any
    work; this server's own page and non-browser clients go through."""
    probe = sorted(tiny_faces.rglob("*.png"))[3].read_bytes()
    index = client.app.state.index  # type: ignore[attr-defined]
    before = len(index.store)

    def enroll(headers: dict[str, str]) -> int:
        return client.post("/enroll", files={"file": ("x.png", probe, "image/png")}, data={"name": "B"},
                           headers=headers).status_code

    assert enroll({"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:9999"}) == 403
    assert enroll({"Sec-Fetch-Site": "same-site"}) == 403
    assert enroll({"Origin": "http://evil.example"}) == 403
    assert enroll({"Origin": "null"}) == 403
    assert len(index.store) == before  # nothing was added
    assert enroll({"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}) == 200  # the page itself
    assert enroll({}) == 200  # curl and other clients send neither header
    assert enroll({"Sec-Fetch-Site": "none"}) == 200  # typed into the address bar / a bookmark
    assert enroll({"Origin": "HTTP://TestServer:80/"}) == 200  # an older browser: Origin alone, normalised
    assert len(index.store) == before + 4


def test_dns_rebinding_is_refused_by_host(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """A rebinding page reaches 127.0.0.1 under its own name: with allowed hosts set (as `faceprint serve` does),
    a foreign Host header is refused before any route, reads included."""
    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    client = TestClient(create_app(tmp_path / "ix", ServeConfig(allowed_hosts=("testserver", "127.0.0.1"))))
    assert client.get("/healthz").status_code == 200
    rebound = {"Host": "attacker.example:8000", "Origin": "http://attacker.example:8000", "Sec-Fetch-Site": "same-origin"}
    assert client.get("/healthz", headers=rebound).status_code == 400
    probe = sorted(tiny_faces.rglob("*.png"))[0].read_bytes()
    r = client.post("/enroll", files={"file": ("x.png", probe, "image/png")}, data={"name": "M"}, headers=rebound)
    assert r.status_code == 400


def test_serving_beyond_loopback_needs_a_user_or_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from faceprint.cli.main import app

    monkeypatch.delenv("FACEPRINT_API_TOKEN", raising=False)
    for args in (["--host", "0.0.0.0"], ["--allowed-host", "photos.example.org"], ["--forwarded-allow-ips", "127.0.0.1"]):
        r = CliRunner().invoke(app, ["serve", str(tmp_path / "ix"), *args])  # beyond loopback, or through a proxy
        assert r.exit_code != 0 and "users add" in r.output, args


def test_raw_traversal_requests_reach_the_app_unnormalised(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """Raw HTTP (http.client sends the path as given): the app sees the `..` and answers 404, never a file."""
    import http.client

    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    app, seen = create_app(tmp_path / "ix"), []

    @app.middleware("http")
    async def record(request, call_next):  # type: ignore[no-untyped-def]
        seen.append(request.scope.get("raw_path", b"").decode("latin-1"))
        return await call_next(request)

    answers = {}
    with live_server(app) as port:
        for target in ("/thumb/../faces.sqlite", "/thumb/..%2F..%2Fetc%2Fpasswd", "/thumb/1/../../faces.sqlite"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", target)
            response = conn.getresponse()
            answers[target] = (response.status, response.read())
            conn.close()
    for target, (status, body) in answers.items():
        assert target in seen  # it reached the app as sent
        assert status == 404 and b"SQLite format" not in body and b"root:" not in body, target


def test_serve_starts_on_loopback_or_with_a_user_or_key(tiny_faces: Path, tmp_path: Path, tiny_weights: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from faceprint.cli.main import app

    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    started: list[tuple[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda asgi, host, port, log_level, **kw: started.append((host, asgi)))
    monkeypatch.delenv("FACEPRINT_API_TOKEN", raising=False)
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "ix"), "--host", "127.0.0.1"])
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("FACEPRINT_API_TOKEN", "s3cret")
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "ix"), "--host", "0.0.0.0", "--allowed-host", "faces.lan"])
    assert r.exit_code == 0, r.output
    monkeypatch.delenv("FACEPRINT_API_TOKEN")
    r = CliRunner().invoke(app, ["keys", "create", str(tmp_path / "ix"), "--role", "viewer"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "ix"), "--host", "0.0.0.0"])
    assert r.exit_code == 0, r.output
    assert [h for h, _ in started] == ["127.0.0.1", "0.0.0.0", "0.0.0.0"]
    loopback = TestClient(started[0][1])  # type: ignore[arg-type]
    assert loopback.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 401  # a key exists now: closed
    assert loopback.get("/healthz", headers={"Host": "127.0.0.1:8000", "x-api-key": key}).status_code == 200
    assert loopback.get("/healthz", headers={"Host": "attacker.example", "x-api-key": key}).status_code == 400
    wide = TestClient(started[1][1])  # type: ignore[arg-type]
    # 0.0.0.0 keeps the Host check: the names given, loopback, this machine's; never a rebinding page's
    assert wide.get("/healthz", headers={"Host": "faces.lan", "x-api-key": "s3cret"}).status_code == 200
    assert wide.get("/healthz", headers={"Host": "attacker.example", "x-api-key": "s3cret"}).status_code == 400


def test_bodies_over_the_limit_are_refused_before_being_read(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """A declared 1 GB body gets 413 while not a byte of it was sent; a streamed (chunked) body is cut at the limit."""
    import http.client

    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    app = create_app(tmp_path / "ix", ServeConfig(max_upload_bytes=100_000))
    with live_server(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.putrequest("POST", "/search")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(10**9))
        conn.endheaders()  # headers only: the server must answer without waiting for the body
        response = conn.getresponse()
        assert response.status == 413 and b"declared" in response.read()
        conn.close()
    client = TestClient(app)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):  # 100 × 64 KB = 6.4 MB, far over the 1.2 MB cap, with no Content-Length
            yield b"\0" * 65536

    r = client.post("/search", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and "declared" not in r.text


def test_a_full_queue_answers_503_with_retry_after(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    """max_pending requests in flight: the next one is refused at once (503, Retry-After), not queued without bound."""
    import threading

    from faceprint.search import open_index

    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    index = open_index(tmp_path / "ix")
    entered, release = threading.Event(), threading.Event()
    real = index.faces.embed_crops

    def slow(crops):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(30)
        return real(crops)

    index.faces.embed_crops = slow  # type: ignore[method-assign]
    client = TestClient(create_app(tmp_path / "ix", ServeConfig(max_pending=1), index=index))
    probe = sorted(tiny_faces.rglob("*.png"))[0].read_bytes()
    first: list[int] = []
    worker = threading.Thread(target=lambda: first.append(
        client.post("/search", files={"file": ("a.png", probe, "image/png")}).status_code))
    worker.start()
    assert entered.wait(30)  # the first request is inside the model work
    r = client.post("/search", files={"file": ("b.png", probe, "image/png")})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert client.get("/healthz").status_code == 200  # reads are not queued behind it
    release.set()
    worker.join(30)
    assert first == [200]
    assert client.post("/search", files={"file": ("c.png", probe, "image/png")}).status_code == 200


def test_a_write_blocked_by_another_process_is_503(client: TestClient, tiny_faces: Path) -> None:
    from faceprint.search.lock import writer_lock

    index = client.app.state.index  # type: ignore[attr-defined]
    index.store.lock_timeout = 0.2
    probe = sorted(tiny_faces.rglob("*.png"))[3].read_bytes()
    with writer_lock(index.store.root):  # another writer holds the index
        r = client.post("/enroll", files={"file": ("x.png", probe, "image/png")}, data={"name": "B"})
    assert r.status_code == 503 and "another process" in r.json()["detail"] and r.headers["retry-after"] == "5"
    assert client.post("/enroll", files={"file": ("x.png", probe, "image/png")}, data={"name": "B"}).status_code == 200


def test_searches_go_on_while_an_enrolment_waits_for_another_writer(client: TestClient, tiny_faces: Path) -> None:
    import threading
    import time

    from faceprint.search.lock import writer_lock

    index = client.app.state.index  # type: ignore[attr-defined]
    index.store.lock_timeout = 3.0
    probe = sorted(tiny_faces.rglob("*.png"))[3].read_bytes()
    statuses: list[int] = []
    entered, real_add = threading.Event(), index.store.add

    def add(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()  # the enrolment's model work is done; it now waits for the writer lock
        return real_add(*args, **kwargs)

    index.store.add = add  # type: ignore[method-assign]
    import faceprint.search.lock as lock_module

    in_wait, real_pause = threading.Event(), lock_module._pause  # noqa: SLF001 - the polling loop's seam

    def pause(seconds: float) -> None:
        in_wait.set()  # the enrolment is inside the writer lock's wait loop
        real_pause(seconds)

    lock_module._pause = pause  # type: ignore[assignment]  # noqa: SLF001
    try:
        with writer_lock(index.store.root):  # another process is writing
            waiting = threading.Thread(target=lambda: statuses.append(client.post(
                "/enroll", files={"file": ("x.png", probe, "image/png")}, data={"name": "B"}).status_code))
            waiting.start()
            assert entered.wait(10) and in_wait.wait(10)  # the fault landed: the enrolment waits for the lock
            t0 = time.perf_counter()
            assert client.post("/search", files={"file": ("y.png", probe, "image/png")}).status_code == 200
            assert time.perf_counter() - t0 < 2.0  # answered while the enrolment still waits
            assert statuses == []
    finally:
        lock_module._pause = real_pause  # type: ignore[assignment]  # noqa: SLF001
    waiting.join(30)
    assert statuses == [200]  # it went through once the lock was free



def test_body_limits_stop_reading_a_stream_at_the_cap() -> None:
    """Driven as ASGI with 64 KB chunks: the body streams through to the app (never held by the middleware), which
    sees a disconnect at the cap; the client gets the middleware's 413, not the app's answer to the cut body."""
    import asyncio

    from faceprint.serve.limits import BodyLimits

    got: list[int] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]  # reads as Starlette's form parser does
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await send({"type": "http.response.start", "status": 400, "headers": []})
                raise RuntimeError("client disconnected")
            got.append(len(message["body"]))
            if not message.get("more_body"):
                return

    pulled, sent = [0], []

    async def receive():  # type: ignore[no-untyped-def]
        pulled[0] += 1
        return {"type": "http.request", "body": b"\0" * 65536, "more_body": pulled[0] < 100}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    limits = BodyLimits(app, max_body=1_000_000, max_pending=1)
    upload = [(b"content-type", b"multipart/form-data; boundary=x")]  # uploads get max_body; anything else 64 KB
    asyncio.run(limits({"type": "http", "method": "POST", "path": "/search", "headers": upload}, receive, send))
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]
    assert pulled[0] <= 1_000_000 // 65536 + 2  # 16 of the 100 chunks, not the whole 6.4 MB
    assert sum(got) <= 1_000_000 and len(got) == 15  # the app got the chunks under the cap as they came
    assert limits.pending == 0  # the slot is given back


def test_large_photos_are_reduced_for_detection_and_boxes_come_back_in_their_pixels(tiny_faces: Path, tmp_path: Path,
                                                                                    tiny_weights: str) -> None:
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw" / "images"
    photo = next(iter(sorted(shared.rglob("*.jpg"))), None)
    if photo is None:
        pytest.skip("needs ../shared/data/lfw")
    build_index(tiny_faces, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    client = TestClient(create_app(tmp_path / "ix", ServeConfig(max_side=500), detect=True))
    small = client.post("/search", files={"file": ("a.jpg", photo.read_bytes(), "image/jpeg")}).json()["faces"][0]["box"]
    buf = io.BytesIO()
    Image.open(photo).resize((2500, 2500), Image.BICUBIC).save(buf, format="JPEG", quality=95)  # 10× the photo
    seen = []

    def spy(img, all_faces=True, max_faces=64):  # type: ignore[no-untyped-def]
        seen.append(img.size)
        return run(img, all_faces, max_faces)

    model = client.app.state.model  # type: ignore[attr-defined]
    run, model.run = model.run, spy
    big = client.post("/search", files={"file": ("b.jpg", buf.getvalue(), "image/jpeg")}).json()["faces"][0]["box"]
    assert seen == [(500, 500)]  # the model saw the reduced photo ...
    np.testing.assert_allclose(big, np.array(small) * 10, atol=50)  # (a 500 px box would be 5× off)  # ... and the box is in the 2500 px photo's pixels


@pytest.mark.parametrize("ending", ["returns", "raises"])
def test_body_limits_answer_413_however_the_app_ends_after_the_cut(ending: str) -> None:
    import asyncio

    from faceprint.serve.limits import BodyLimits

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        while (await receive())["type"] != "http.disconnect":
            pass
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"cut"})
        if ending == "raises":
            raise RuntimeError("client disconnected")

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b"\0" * 65536, "more_body": True}

    sent: list[dict] = []

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    limits = BodyLimits(app, max_body=200_000, max_pending=1)
    asyncio.run(limits({"type": "http", "method": "POST", "path": "/search", "headers": []}, receive, send))
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert limits.pending == 0  # the slot is given back however the app ended
    assert b"cut" not in b"".join(m.get("body", b"") for m in sent)


def test_body_limits_pass_a_real_disconnect_under_the_cap_through() -> None:
    import asyncio

    from faceprint.serve.limits import BodyLimits

    messages = [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]
    seen: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        while True:
            m = await receive()
            seen.append(m["type"])
            if m["type"] == "http.disconnect":
                return  # a client that went away gets no answer

    async def receive():  # type: ignore[no-untyped-def]
        return messages.pop(0)

    sent: list[dict] = []

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    limits = BodyLimits(app, max_body=1000, max_pending=1)
    asyncio.run(limits({"type": "http", "method": "POST", "path": "/search", "headers": []}, receive, send))
    assert seen == ["http.request", "http.disconnect"] and sent == [] and limits.pending == 0
