"""``faceprint weights fetch``: a download the user asks for, resumable, with a progress bar and a sha256 check."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from faceprint.home import cache_dir, file_sha256
from faceprint.models.known import KNOWN_WEIGHTS, WeightsError

__all__ = ["download", "fetch_weights"]

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None)."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes A-B/N`` header; None for what is absent or ``*``."""
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value or "")
    if not m:
        return None, None
    return int(m.group(1)), (int(m.group(2)) if m.group(2) != "*" else None)


def _validator(headers: Any) -> str | None:
    """A strong ETag or Last-Modified, what If-Range may carry (a weak ``W/`` ETag may not)."""
    etag = headers.get("ETag")
    return etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")


def _read_meta(meta: Path) -> dict[str, Any]:
    try:
        data = json.loads(meta.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


class _Restart(Exception):
    """The server's answer does not continue the partial file: drop it and download from the start."""


def _open(url: str, start: int, meta: dict[str, Any], timeout: float) -> tuple[Any, bool, int | None]:
    """Open ``url`` from byte ``start``: (response, whether it continues the partial file, total size when known).

    ``If-Range`` makes a server that changed the file answer 200 with all of it, so nothing is spliced; a
    206 must start at ``start`` and name the size the partial file was started with.
    """
    validator = meta.get("validator") if start else None
    headers = {"Range": f"bytes={start}-", **({"If-Range": validator} if validator else {})} if start else {}
    resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)  # noqa: S310 - the user named it
    if start and resp.status == 206:
        first, size = _content_range(resp.headers.get("Content-Range"))
        if first != start or (meta.get("total") is not None and size != meta["total"]):
            resp.close()
            raise _Restart
        return resp, True, size
    length = resp.headers.get("Content-Length")
    return resp, False, int(length) if length is not None else None


def _whole_already(exc: urllib.error.HTTPError, start: int) -> bool:
    """A 416 to ``Range: bytes=start-`` whose ``Content-Range: bytes */N`` says the file has exactly ``start`` bytes."""
    m = re.match(r"bytes \*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
    return exc.code == 416 and m is not None and int(m.group(1)) == start


def download(url: str, target: Path, sha256: str | None = None, retries: int = 5, timeout: float = 30.0,
             on_progress: Progress | None = None) -> Path:
    """Download ``url`` to ``target``, resuming a cut transfer (this run's or an earlier one's) with a Range request.

    The partial file is ``target.<url hash>.part`` with a ``.json`` beside it (the URL's validator), so
    two URLs never share one, and a file that changed on the server restarts instead of being spliced.
    With ``sha256``, a mismatch removes the file and raises; ``target`` appears only when complete.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f"{target.name}.{hashlib.sha256(url.encode()).hexdigest()[:12]}.part")
    meta = part.with_suffix(".json")
    for attempt in range(retries + 1):
        info = _read_meta(meta)
        start = part.stat().st_size if part.exists() and info.get("url") == url else 0
        try:
            try:
                resp, resumed, total = _open(url, start, info, timeout)
            except _Restart:
                part.unlink()
                continue
            except urllib.error.HTTPError as exc:
                if start and _whole_already(exc, start):
                    break
                if exc.code == 416 and start:  # the partial file does not fit this file: start over
                    part.unlink()
                    continue
                raise WeightsError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            with resp, open(part, "ab" if resumed else "wb") as fh:
                if not resumed:
                    meta.write_text(json.dumps({"url": url, "validator": _validator(resp.headers), "total": total}))
                done = start if resumed else 0
                while chunk := resp.read(1 << 16):
                    fh.write(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
            if total is not None and done < total:
                raise ConnectionError(f"connection closed at {done} of {total} bytes")
            break
        except (OSError, http.client.HTTPException) as exc:  # IncompleteRead (a cut chunked body) is not an OSError
            if attempt == retries:
                raise WeightsError(f"{url}: download failed after {retries + 1} tries ({exc!r}); "
                                   f"rerun the same command to resume from {part}") from exc
    else:
        raise WeightsError(f"{url}: the server never continued or restarted the file cleanly; rerun to start afresh")
    digest = file_sha256(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        meta.unlink(missing_ok=True)
        raise WeightsError(f"{url}: sha256 {digest} does not match the expected {sha256}; the download was removed")
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(part, target)
    meta.unlink(missing_ok=True)
    return target


def _filename(url: str) -> str:
    name = Path(urlparse(url).path).name
    if not name:
        raise WeightsError(f"{url}: no file name in the URL")
    return name


def fetch_weights(name_or_url: str, sha256: str | None = None, name: str | None = None,
                  on_progress: Progress | None = None) -> tuple[Path, str]:
    """Download known weights (or a URL) into ``<cache>/downloads`` and import it: (cache folder or file, sha256).

    A URL ending in ``.pt`` is imported as a facenet-pytorch state dict, ``.pb`` as a frozen graph,
    ``.onnx`` as an ONNX embedder (ArcFace preprocessing); anything else is only downloaded.
    """
    entry = KNOWN_WEIGHTS.get(name_or_url)
    if entry is not None and entry.url is None:
        raise WeightsError(f"{name_or_url} has no download: {entry.how_to_get}")
    url = entry.url if entry is not None else name_or_url
    if urlparse(url).scheme not in ("http", "https"):  # type: ignore[arg-type]
        raise WeightsError(f"{name_or_url!r} is neither a known name ({', '.join(sorted(KNOWN_WEIGHTS))}) nor an http(s) URL")
    expected = sha256 or (entry.sha256 if entry is not None else None)
    file = download(url, cache_dir() / "downloads" / _filename(url), expected, on_progress=on_progress)  # type: ignore[arg-type]
    digest = expected.lower() if expected else file_sha256(file)
    store_as = name or (entry.name if entry is not None else Path(file).stem)
    suffix = file.suffix.lower()
    if (entry is not None and entry.url_importer == "pt") or suffix == ".pt":
        from faceprint.models.importers import import_facenet_pytorch

        return import_facenet_pytorch(file, store_as), digest
    if suffix == ".pb":
        from faceprint.models.importers import import_tf_graph

        return import_tf_graph(file, store_as), digest
    if suffix == ".onnx":
        from faceprint.models.importers import import_onnx

        return import_onnx(file, store_as), digest
    return file, digest

