"""One way in for training data: an identity folder, a faceprint pack, or an insightface RecordIO set."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceprint.data.folder import DatasetError, IdentityFolder, scan_identity_folder
from faceprint.data.images import ImageLoadError, decode_bytes
from faceprint.data.packed import PACK_FILE, open_packed
from faceprint.data.recordio import IRHeader, RecordFile, RecordIOError, write_recordio
from faceprint.data.transforms import pil_to_uint8

__all__ = ["RecordIOReader", "dataset_kind", "folder_to_recordio", "item_side", "open_dataset", "open_recordio"]


def dataset_kind(root: str | Path) -> str:
    """``recordio`` (a ``.rec`` file, or a folder holding ``train.rec``), ``pack`` or ``folder``."""
    root = Path(root)
    if (root.suffix == ".rec" and root.is_file()) or (root.is_dir() and (root / "train.rec").is_file()):
        return "recordio"
    if root.is_dir() and (root / PACK_FILE).is_file():
        return "pack"
    return "folder"


def open_dataset(root: str | Path, verify: bool = True) -> IdentityFolder:
    """The dataset at ``root`` as an ``IdentityFolder`` (see ``dataset_kind``)."""
    kind = dataset_kind(root)
    if kind == "recordio":
        root = Path(root)
        return open_recordio(root if root.suffix == ".rec" else root / "train.rec")
    if kind == "pack":
        return open_packed(root)
    return scan_identity_folder(root, verify=verify)


@dataclass
class RecordIOReader:
    """Decodes the image of a RecordIO item (``paths``: ``root/<label>/<record key>``)."""

    records: RecordFile

    def raw(self, path: Path, size: int) -> torch.Tensor:
        _, data = self.records.read(int(path.name))
        try:
            return pil_to_uint8(decode_bytes(data, f"{self.records.rec}#{path.name}"), size)
        except ImageLoadError as exc:
            raise DatasetError(str(exc)) from None


def _labels(records: RecordFile, keys: list[int]) -> list[float]:
    """Each image record's identity: from insightface's identity records when the header names them, else each
    record's own header."""
    bounds = records.header_bounds()
    if bounds is not None:
        first, end = bounds
        owner: dict[int, float] = {}
        for k in (k for k in records.keys if first <= k < end):
            span = records.read_header(k)
            if len(span.labels) >= 2 and np.isfinite(span.labels[:2]).all():
                lo, hi = max(int(span.labels[0]), 1), min(int(span.labels[1]), first)  # image keys only
                owner.update({i: float(k - first) for i in range(lo, hi)})
        if owner and all(k in owner for k in keys):
            return [owner[k] for k in keys]
    return [records.read_header(k).label for k in keys]


def open_recordio(rec: str | Path) -> IdentityFolder:
    """An insightface-style ``train.rec`` (+ ``train.idx``) as an ``IdentityFolder`` of its image records."""
    records = RecordFile(Path(rec).resolve())
    keys = records.image_keys()
    if not keys:
        raise RecordIOError(f"{rec} holds no image records")
    raw = _labels(records, keys)
    names = sorted(set(raw))
    index = {v: i for i, v in enumerate(names)}
    classes = [f"{int(v)}" if float(v).is_integer() else f"{v:g}" for v in names]
    labels = [index[v] for v in raw]
    root = Path(rec).parent
    paths = [root / classes[y] / str(k) for k, y in zip(keys, labels)]
    return IdentityFolder(root, paths, labels, classes, [], RecordIOReader(records))


def _jpeg(x: torch.Tensor, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def folder_to_recordio(folder: IdentityFolder, rec: str | Path, size: int | None = None, quality: int = 95,
                       on_item: Callable[[int], None] | None = None) -> int:
    """Write ``folder`` as insightface lays its sets out: header record 0, images 1..N (label = identity), then one
    record per identity bounding its images. Files are copied as they are when ``size`` is None and they are JPEGs,
    else re-encoded at ``size``. Returns the number of image records."""
    order = np.argsort(np.asarray(folder.labels), kind="stable")
    n, c = len(order), len(folder.classes)

    def records() -> Iterator[tuple[int, IRHeader, bytes]]:
        yield 0, IRHeader((float(n + 1), float(n + 1 + c))), b""
        spans: dict[int, list[int]] = {}
        for key, i in enumerate(order, 1):
            path, label = folder.paths[i], folder.labels[i]
            spans.setdefault(label, [key, key])[1] = key + 1
            if size is None and folder.reader is None and path.suffix.lower() in (".jpg", ".jpeg"):
                data = path.read_bytes()
            else:
                data = _jpeg(folder.raw(int(i), size or item_side(folder, int(i))), quality)
            if on_item is not None:
                on_item(key)
            yield key, IRHeader((float(label),)), data
        for label in range(c):
            start, end = spans.get(label, [0, 0])
            yield n + 1 + label, IRHeader((float(start), float(end))), b""

    write_recordio(rec, records())
    return n


def item_side(folder: IdentityFolder, index: int) -> int:
    """The item's own side (the longer one), for re-encoding at its size."""
    if isinstance(folder.reader, RecordIOReader):
        _, data = folder.reader.records.read(int(folder.paths[index].name))
        with Image.open(io.BytesIO(data)) as im:
            return max(im.size)
    if folder.reader is not None:
        return int(folder.reader.size)
    with Image.open(folder.paths[index]) as im:
        return max(im.size)
