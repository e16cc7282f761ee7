"""A packed dataset: aligned faces as fixed-size uint8 shards read by memory map, so an epoch never decodes or resizes.

Layout of ``OUT/``: ``pack.json`` (size, count, items per shard, shard names, identity names), ``labels.npy``
(int32 per item), ``names.json`` (where each item came from) and ``images-NNNNN.u8`` shards, each ``rows × size ×
size × 3`` bytes, RGB. Shards are written one by one (atomically) and ``pack.json`` last, so an interrupted pack
resumes at the first missing shard and a half-written pack is never mistaken for a whole one.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceprint.data.folder import DatasetError, IdentityFolder
from faceprint.io import atomic_path, atomic_write_bytes
from faceprint.data.transforms import pil_to_uint8

__all__ = ["PACK_FILE", "PackedReader", "open_packed", "write_pack"]

PACK_FILE = "pack.json"
FORMAT = "faceprint-pack"
MAX_SHARD_BYTES = 1 << 31  # 2 GiB per shard file
MAX_OPEN_SHARDS = 64  # memory maps kept open per process (each holds a file descriptor)


def _fingerprint(folder: IdentityFolder) -> str:
    """What the pack is made of: every item's path, label and (for files) size and modification time."""
    h = hashlib.sha256(str(Path(folder.root).resolve()).encode())
    for path, label in zip(folder.paths, folder.labels):
        h.update(f"{path}\0{label}\0".encode())
        if folder.reader is None:
            st = path.stat()
            h.update(f"{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def write_pack(out: str | Path, folder: IdentityFolder, size: int, shard_items: int = 4096,
               on_item: Callable[[int], None] | None = None) -> Path:
    """Pack every item of ``folder`` (files, or a RecordIO set read through its reader) at ``size`` × ``size``.

    Finished shards are kept only for a rerun of the same pack (same items, files unchanged, same settings, recorded
    in ``.plan.json`` until the pack is whole); anything else starts over. Returns ``out``.
    """
    out = Path(out)
    if size < 8 or size > 1024:
        raise DatasetError(f"pack size must be 8..1024 pixels, got {size}")
    if shard_items < 1 or shard_items * size * size * 3 > MAX_SHARD_BYTES:
        raise DatasetError(f"shard_items must be 1..{MAX_SHARD_BYTES // (size * size * 3)} at {size} px, got {shard_items}")
    if (out / PACK_FILE).is_file():
        raise DatasetError(f"{out} already holds a pack; remove it or choose another output")
    out.mkdir(parents=True, exist_ok=True)
    plan = {"size": size, "count": len(folder), "shard_items": shard_items, "source": _fingerprint(folder)}
    plan_file = out / ".plan.json"
    same = plan_file.is_file() and json.loads(plan_file.read_text()) == plan
    if not same:  # another or an unrecorded pack: none of its shards can be trusted
        for old in out.glob("images-*.u8"):
            old.unlink()
        atomic_write_bytes(plan_file, json.dumps(plan).encode())
    shards = []
    item_bytes = size * size * 3
    for s, start in enumerate(range(0, len(folder), shard_items)):
        name, rows = f"images-{s:05d}.u8", min(shard_items, len(folder) - start)
        shards.append(name)
        if (out / name).is_file() and (out / name).stat().st_size == rows * item_bytes:
            if on_item is not None:
                on_item(start + rows)
            continue
        with atomic_path(out / name) as tmp, open(tmp, "wb") as f:  # item by item: one image in memory, not the shard
            for r in range(rows):
                f.write(folder.raw(start + r, size).permute(1, 2, 0).contiguous().numpy().tobytes())
                if on_item is not None:
                    on_item(start + r + 1)
    np.save(out / "labels.npy", np.asarray(folder.labels, np.int32))
    names = [str(p.relative_to(folder.root)) if folder.reader is None else str(p) for p in folder.paths]
    atomic_write_bytes(out / "names.json", json.dumps(names).encode())
    meta = {"format": FORMAT, "version": 1, "size": size, "count": len(folder), "shard_items": shard_items,
            "source": str(folder.root), "shards": shards, "classes": folder.classes}
    atomic_write_bytes(out / PACK_FILE, json.dumps(meta).encode())
    plan_file.unlink()
    return out


@dataclass
class PackedReader:
    """Items of a pack by number; shards are memory-mapped on first use in each process."""

    root: Path
    size: int
    shard_items: int
    shards: list[str]

    def __post_init__(self) -> None:
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()

    def array(self, index: int) -> np.ndarray:
        """Item ``index`` as a (size, size, 3) uint8 view of its shard (at most MAX_OPEN_SHARDS maps stay open)."""
        shard, row = divmod(index, self.shard_items)
        if shard in self._maps:
            self._maps.move_to_end(shard)
        else:
            data = np.memmap(self.root / self.shards[shard], np.uint8, "r")
            self._maps[shard] = data.reshape(-1, self.size, self.size, 3)
            if len(self._maps) > MAX_OPEN_SHARDS:
                self._maps.popitem(last=False)  # its descriptor closes when no view of it is left
        return self._maps[shard][row]

    def raw(self, path: Path, size: int) -> torch.Tensor:
        """The item a pack path names (``root/<identity>/<number>``) as (3, size, size) uint8."""
        arr = self.array(int(path.name))
        if size != self.size:
            return pil_to_uint8(Image.fromarray(np.asarray(arr)), size)
        return torch.from_numpy(np.array(arr)).permute(2, 0, 1).contiguous()

    def __getstate__(self) -> dict:  # type: ignore[type-arg]
        return {k: v for k, v in self.__dict__.items() if k != "_maps"}  # maps reopen in the loader worker

    def __setstate__(self, state: dict) -> None:  # type: ignore[type-arg]
        self.__dict__.update(state)
        self._maps = OrderedDict()


def open_packed(root: str | Path) -> IdentityFolder:
    """A pack as an ``IdentityFolder`` whose items are read by memory map."""
    root = Path(root).resolve()
    try:
        meta = json.loads((root / PACK_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{root / PACK_FILE} cannot be read: {exc}") from None
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{root / PACK_FILE} is not a faceprint pack")
    try:
        size, n, per, shards = int(meta["size"]), int(meta["count"]), int(meta["shard_items"]), list(meta["shards"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{root / PACK_FILE} is damaged ({exc})") from None
    if not 8 <= size <= 1024 or n < 0 or per < 1 or len(shards) != -(-n // per) or not all(
            isinstance(x, str) and x == Path(x).name and x.startswith("images-") for x in shards):
        raise DatasetError(f"{root / PACK_FILE} is damaged: its size, count or shard list does not add up")
    for s, name in enumerate(shards):
        rows = min(per, n - s * per)
        f = root / name
        if not f.is_file() or f.stat().st_size != rows * size * size * 3:
            raise DatasetError(f"{f} is missing or not {rows} images of {size}×{size}: repack the dataset")
    labels = np.load(root / "labels.npy").astype(int).tolist()
    classes: Sequence[str] = meta["classes"]
    if len(labels) != n or (labels and not 0 <= min(labels) <= max(labels) < len(classes)):
        raise DatasetError(f"{root / 'labels.npy'} does not match {root / PACK_FILE}")
    paths = [root / classes[y] / str(i) for i, y in enumerate(labels)]
    return IdentityFolder(root, paths, labels, list(classes), [], PackedReader(root, size, per, shards))
