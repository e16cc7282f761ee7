"""``weights fetch``: downloads from a local HTTP server on 127.0.0.1 — resume after a cut, sha256 refusal."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint.cli.main import main
from faceprint.models import Embedder, WeightsError
from faceprint.models.fetch import download


def _part(target: Path, url: str) -> Path:
    """Where ``download`` keeps the partial file of ``url``."""
    return target.with_name(f"{target.name}.{hashlib.sha256(url.encode()).hexdigest()[:12]}.part")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".json")))

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()


class _Server:
    """Serves ``files``; the first full GET of a file is cut after ``cut_at`` bytes; Range requests get 206."""

    def __init__(self, files: dict[str, bytes], cut_at: int | None = None, ranges: bool = True, chunked: bool = False,
                 etag: str | None = None, lying_206: bool = False) -> None:
        self.files, self.cut_at, self.ranges, self.chunked, self.etag = files, cut_at, ranges, chunked, etag
        self.lying_206 = lying_206  # answer a Range request with 206 but the file from byte 0
        self.requests: list[tuple[str, str | None, int]] = []  # path, Range header, bytes sent
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                slot = len(server.requests)  # requests in the order they arrived (a handler may finish after the next)
                server.requests.append((self.path, rng, -1))
                start = int(rng.split("=")[1].rstrip("-")) if rng and server.ranges else 0
                if_range = self.headers.get("If-Range")
                if start and if_range is not None and if_range != server.etag:  # changed since: the whole file
                    start = 0
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    server.requests[slot] = (self.path, rng, 0)
                    return
                body = data[start:] if not (server.lying_206 and start) else data
                self.send_response(206 if start else 200)
                if start:
                    first = 0 if server.lying_206 else start
                    self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
                if server.etag:
                    self.send_header("ETag", server.etag)
                self.send_header("Transfer-Encoding" if server.chunked else "Content-Length",
                                 "chunked" if server.chunked else str(len(body)))
                self.end_headers()
                cut = server.cut_at if (server.cut_at is not None and not start) else None
                if cut is not None:
                    server.cut_at = None  # only the first transfer is cut
                    body = body[:cut]
                if server.chunked:
                    self.wfile.write(f"{len(body) + 1000:x}\r\n".encode() + body if cut is not None
                                     else f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
                else:
                    self.wfile.write(body)
                self.wfile.flush()
                server.requests[slot] = (self.path, rng, len(body))
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))


def test_cut_connection_is_resumed_with_a_range_request(tmp_path: Path) -> None:
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    seen: list[int] = []
    with _Server({"w.bin": PAYLOAD}, cut_at=100_000) as srv:
        out = download(f"{srv.url}/w.bin", tmp_path / "w.bin", sha, on_progress=lambda done, total: seen.append(done))
    assert out.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == []
    (first_path, first_range, first_sent), (_, second_range, second_sent) = srv.requests
    assert first_range is None and first_sent == 100_000  # the cut happened where the server says
    resumed_from = int(second_range.split("=")[1].rstrip("-"))  # type: ignore[union-attr]
    assert 0 < resumed_from <= 100_000 and second_sent == len(PAYLOAD) - resumed_from  # only the rest was sent
    assert max(seen) == len(PAYLOAD)


def _earlier_run(tmp_path: Path, url: str, data: bytes, validator: str | None = None) -> None:
    _part(tmp_path / "w.bin", url).write_bytes(data)
    _part(tmp_path / "w.bin", url).with_suffix(".json").write_text(json.dumps({"url": url, "validator": validator}))


def test_partial_file_of_an_earlier_run_is_resumed(tmp_path: Path) -> None:
    with _Server({"w.bin": PAYLOAD}) as srv:
        _earlier_run(tmp_path, f"{srv.url}/w.bin", PAYLOAD[:50_000])
        download(f"{srv.url}/w.bin", tmp_path / "w.bin")
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD
    assert srv.requests == [("/w.bin", "bytes=50000-", len(PAYLOAD) - 50_000)]


def test_server_without_ranges_restarts_from_zero(tmp_path: Path) -> None:
    with _Server({"w.bin": PAYLOAD}, ranges=False) as srv:
        _earlier_run(tmp_path, f"{srv.url}/w.bin", b"x" * 1000)  # junk that must not end up in the file
        download(f"{srv.url}/w.bin", tmp_path / "w.bin", hashlib.sha256(PAYLOAD).hexdigest())
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD and srv.requests[0][1] == "bytes=1000-"


def test_cut_chunked_body_is_retried_not_a_traceback(tmp_path: Path) -> None:
    """A chunked response cut mid-chunk raises http.client.IncompleteRead (not an OSError): it is resumed too."""
    with _Server({"w.bin": PAYLOAD}, cut_at=70_000, chunked=True) as srv:
        download(f"{srv.url}/w.bin", tmp_path / "w.bin", hashlib.sha256(PAYLOAD).hexdigest())
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD
    assert len(srv.requests) == 2 and srv.requests[1][1] is not None  # the second request was a resume


def test_changed_file_on_the_server_restarts_instead_of_splicing(tmp_path: Path) -> None:
    new = PAYLOAD[::-1]
    with _Server({"w.bin": new}, etag='"v2"') as srv:
        _earlier_run(tmp_path, f"{srv.url}/w.bin", PAYLOAD[:50_000], validator='"v1"')
        download(f"{srv.url}/w.bin", tmp_path / "w.bin")
    assert (tmp_path / "w.bin").read_bytes() == new
    assert srv.requests == [("/w.bin", "bytes=50000-", len(new))]  # asked to resume, got (and kept) the whole file


def test_a_206_that_does_not_continue_the_part_restarts(tmp_path: Path) -> None:
    """A 206 from another offset, or for a file of another size, is not appended to the partial file."""
    with _Server({"w.bin": PAYLOAD}, lying_206=True) as srv:
        url = f"{srv.url}/w.bin"
        _earlier_run(tmp_path, url, PAYLOAD[:50_000])
        download(url, tmp_path / "w.bin")  # no sha256: only the offset check protects this file
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD
    assert [r[1] for r in srv.requests] == ["bytes=50000-", None]  # refused the 206, then fetched from scratch
    grown = PAYLOAD + b"more"
    with _Server({"w.bin": grown}) as srv:
        url = f"{srv.url}/w.bin"
        _part(tmp_path / "w.bin", url).write_bytes(PAYLOAD[:50_000])  # started when the file had len(PAYLOAD) bytes
        _part(tmp_path / "w.bin", url).with_suffix(".json").write_text(json.dumps({"url": url, "total": len(PAYLOAD)}))
        download(url, tmp_path / "w.bin")
    assert (tmp_path / "w.bin").read_bytes() == grown and [r[1] for r in srv.requests] == ["bytes=50000-", None]


def test_another_urls_part_or_a_damaged_record_is_not_resumed(tmp_path: Path) -> None:
    with _Server({"w.bin": PAYLOAD}) as srv:
        url = f"{srv.url}/w.bin"
        _part(tmp_path / "w.bin", url).write_bytes(b"junk")
        _part(tmp_path / "w.bin", url).with_suffix(".json").write_text(json.dumps({"url": url + "?other"}))
        download(url, tmp_path / "w.bin")
        _part(tmp_path / "w.bin", url).write_bytes(b"junk")
        _part(tmp_path / "w.bin", url).with_suffix(".json").write_text("{not json")
        download(url, tmp_path / "w.bin")
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD and [r[1] for r in srv.requests] == [None, None]


def test_partial_already_whole_or_too_long(tmp_path: Path) -> None:
    with _Server({"w.bin": PAYLOAD}) as srv:
        url = f"{srv.url}/w.bin"
        _earlier_run(tmp_path, url, PAYLOAD)  # whole already: 416 with bytes */N, N == what we have
        download(url, tmp_path / "w.bin", hashlib.sha256(PAYLOAD).hexdigest())
        assert (tmp_path / "w.bin").read_bytes() == PAYLOAD
        _earlier_run(tmp_path, url, PAYLOAD + b"stale tail")  # longer than the file: start over
        download(url, tmp_path / "w.bin", hashlib.sha256(PAYLOAD).hexdigest())
    assert (tmp_path / "w.bin").read_bytes() == PAYLOAD and _leftovers(tmp_path) == []
    assert [r[1] for r in srv.requests] == [f"bytes={len(PAYLOAD)}-", f"bytes={len(PAYLOAD) + 10}-", None]


def test_a_server_that_keeps_failing_gives_one_error_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="rerun the same command to resume"):
        download("http://127.0.0.1:9/none.bin", tmp_path / "n.bin", retries=1, timeout=2)


def test_wrong_sha256_is_refused_and_the_download_removed(tmp_path: Path) -> None:
    with _Server({"w.bin": PAYLOAD}, cut_at=100_000) as srv, pytest.raises(WeightsError, match="does not match"):
        download(f"{srv.url}/w.bin", tmp_path / "w.bin", "0" * 64)
    assert len(srv.requests) == 2  # it did download (and resume) before refusing
    assert not (tmp_path / "w.bin").exists() and _leftovers(tmp_path) == []


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with _Server({}) as srv, pytest.raises(WeightsError, match="HTTP 404"):
        download(f"{srv.url}/nothing.pt", tmp_path / "n.pt")
    assert not (tmp_path / "n.pt").exists()


def test_cli_fetch_onnx_url_imports_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    from faceprint.backbones import create_backbone
    from faceprint.models import onnx_bytes

    data = onnx_bytes(create_backbone("small_cnn", embedding_dim=8), 64)
    sha = hashlib.sha256(data).hexdigest()
    with _Server({"face.onnx": data}, cut_at=len(data) // 3) as srv:
        with pytest.raises(SystemExit) as ok:
            main(["weights", "fetch", f"{srv.url}/face.onnx", "--sha256", sha, "--name", "tiny-onnx"])
        assert ok.value.code in (0, None) and sha in capsys.readouterr().out.replace("\n", "")
        assert len(srv.requests) == 2  # cut, then resumed
        with pytest.raises(SystemExit) as exit_info:
            main(["weights", "fetch", f"{srv.url}/face.onnx", "--sha256", "f" * 64])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "does not match" in err and "Traceback" not in err
    embedder = Embedder.from_pretrained("tiny-onnx")
    assert embedder.backend == "onnx" and embedder.dim == 8 and embedder.image_size == 64


def test_fetch_refuses_unknown_names_and_entries_without_a_download() -> None:
    runner = CliRunner()
    from faceprint.cli.main import app

    result = runner.invoke(app, ["weights", "fetch", "resnet-9000"])
    assert result.exit_code != 0 and "neither a known name" in str(result.exception)
    result = runner.invoke(app, ["weights", "fetch", "mtcnn"])
    assert result.exit_code != 0 and "has no download" in str(result.exception)
