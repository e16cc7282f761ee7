"""Hostile traffic: fuzzed uploads never cause a 5xx, the API token guards /enroll, concurrent enrolments all land."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from faceprint.search import build_index  # noqa: E402
from faceprint.serve import ServeConfig, create_app  # noqa: E402


@pytest.fixture()
def app_dir(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> Path:
    small = tmp_path / "gallery"
    small.mkdir()
    for d in sorted(tiny_faces.iterdir())[:4]:
        (small / d.name).symlink_to(d, target_is_directory=True)
    build_index(small, tmp_path / "ix", {"weights": tiny_weights}, detect=False)[0].close()
    return tmp_path / "ix"


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


PAYLOADS = st.one_of(
    st.binary(max_size=2048),
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"BM"]).flatmap(
        lambda head: st.binary(max_size=512).map(lambda tail: head + tail)),
)


def test_fuzzed_uploads_never_500(app_dir: Path) -> None:
    client = TestClient(create_app(app_dir, ServeConfig(max_upload_bytes=4096)), raise_server_exceptions=False)
    codes: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=PAYLOADS, ctype=st.sampled_from(["image/jpeg", "image/png", "text/html", "application/octet-stream", ""]),
           endpoint=st.sampled_from(["/search", "/enroll", "/verify"]), k=st.sampled_from(["1", "5", "-3", "x", "9999"]))
    def one(data: bytes, ctype: str, endpoint: str, k: str) -> None:
        if endpoint == "/verify":
            files = {"file_a": ("a.jpg", data, ctype), "file_b": ("b.jpg", data, ctype)}
            r = client.post(endpoint, files=files)
        else:
            r = client.post(endpoint, files={"file": ("x.jpg", data, ctype)}, data={"k": k, "name": "fuzz"})
        codes.append(r.status_code)
        assert r.status_code < 500, (endpoint, r.status_code, r.text)

    one()
    # many parts, missing parts, and a body that is not multipart at all
    many = {f"file{i}": (f"{i}.jpg", _jpeg(i), "image/jpeg") for i in range(30)}
    assert client.post("/search", files=many).status_code == 422
    assert client.post("/search", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"}).status_code < 500
    assert client.post("/verify", files={"file_a": ("a.jpg", _jpeg(1), "image/jpeg")}).status_code == 422
    assert len(codes) >= 60


def test_token_guards_enroll(app_dir: Path) -> None:
    client = TestClient(create_app(app_dir, ServeConfig(token="s3cret")))
    files = {"file": ("x.jpg", _jpeg(0), "image/jpeg")}
    assert client.post("/enroll", files=files, data={"name": "A"}).status_code == 401
    assert client.post("/enroll", files=files, data={"name": "A"}, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.post("/enroll", files=files, data={"name": "A"}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert client.post("/search", files=files).status_code == 401  # with a token, reading needs it too
    assert client.post("/search", files=files, headers={"x-api-key": "s3cret"}).status_code == 200


def test_concurrent_enroll_and_search_lose_nothing(app_dir: Path) -> None:
    client = TestClient(create_app(app_dir))
    before = client.get("/healthz").json()["faces"]

    def enroll(i: int) -> int:
        return client.post("/enroll", files={"file": (f"{i}.jpg", _jpeg(100 + i), "image/jpeg")},
                           data={"name": f"person{i}"}).status_code

    def search(i: int) -> int:
        return client.post("/search", files={"file": ("q.jpg", _jpeg(i), "image/jpeg")}).status_code

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(enroll if i % 2 else search, i) for i in range(40)]
        codes = [f.result() for f in futures]
    assert set(codes) == {200}
    assert client.get("/healthz").json()["faces"] == before + 20
    names = {m["identity"] for i in range(1, 40, 2)
             for m in client.post("/search", files={"file": ("q.jpg", _jpeg(100 + i), "image/jpeg")},
                                  data={"k": "1"}).json()["faces"][0]["matches"]}
    assert names == {f"person{i}" for i in range(1, 40, 2)}
