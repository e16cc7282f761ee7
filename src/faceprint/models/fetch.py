"""``faceprint weights fetch``: a download the user asks for, resumable, with a progress bar and a sha256 check."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from faceprint.home import cache_dir, file_sha256
from faceprint.models.known import KNOWN_WEIGHTS, WeightsError

__all__ = ["download", "fetch_weights"]

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None)."""


def _request(url: str, start: int, timeout: float) -> tuple[object, bool, int | None]:
    """Open ``url`` from byte ``start``: (response, whether it resumed, total size when known)."""
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - the user named this URL
    resumed = start > 0 and resp.status == 206
    length = resp.headers.get("Content-Length")
    total = (int(length) + (start if resumed else 0)) if length is not None else None
    return resp, resumed, total


def download(url: str, target: Path, sha256: str | None = None, retries: int = 5, timeout: float = 30.0,
             on_progress: Progress | None = None) -> Path:
    """Download ``url`` to ``target`` via ``target.part``, resuming a cut transfer with an HTTP Range request.

    A partial file left by an earlier run is resumed too. With ``sha256``, a mismatch removes the file
    and raises; the file appears at ``target`` only when complete (and verified).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(retries + 1):
        start = part.stat().st_size if part.exists() else 0
        try:
            resp, resumed, total = _request(url, start, timeout)
            with resp, open(part, "ab" if resumed else "wb") as fh:  # type: ignore[attr-defined]
                done = start if resumed else 0
                while chunk := resp.read(1 << 16):  # type: ignore[attr-defined]
                    fh.write(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
            if total is not None and done < total:
                raise ConnectionError(f"connection closed at {done} of {total} bytes")
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and start:  # the partial file is already whole (or longer than the file)
                break
            raise WeightsError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (OSError, ConnectionError) as exc:
            if attempt == retries:
                raise WeightsError(f"{url}: download failed after {retries + 1} tries ({exc}); "
                                   f"rerun the same command to resume from {part}") from exc
    digest = file_sha256(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise WeightsError(f"{url}: sha256 {digest} does not match the expected {sha256}; the download was removed")
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(part, target)
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

