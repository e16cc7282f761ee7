"""MXNet RecordIO without MXNet: insightface's ``train.rec`` + ``train.idx`` read and written in plain Python.

A record is the magic 0xced7230a (uint32 LE), a uint32 whose top 3 bits are a continuation flag (0 whole, 1 first,
2 middle, 3 last part) and whose low 29 bits are the part's length, the part's bytes, and zero padding to 4 bytes.
dmlc's writer splits a payload wherever the magic occurs at a 4-byte boundary (the reader puts the magic back).
A payload is an ``IRHeader`` (uint32 flag, float32 label, uint64 id, uint64 id2); ``flag`` > 0 means ``flag``
float32 labels follow it (and ``label`` is 0); then the image bytes. The ``.idx`` file lists ``key<TAB>offset``.
insightface's sets keep a header record at key 0 whose two labels bound the image records: images are keys
1 .. label[0] − 1, and keys label[0] .. label[1] − 1 are per-identity records (their labels: first and end key).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceprint.data.folder import DatasetError
from faceprint.io import atomic_path

__all__ = ["MAGIC", "IRHeader", "RecordIOError", "RecordFile", "pack_record", "unpack_record", "write_recordio"]

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_HEADER = struct.Struct("<IfQQ")
_MAX_PART = (1 << 29) - 1


class RecordIOError(DatasetError):
    """A RecordIO file or index that cannot be read; the message names the file and the offset."""


@dataclass(frozen=True)
class IRHeader:
    """MXNet's image-record header: ``labels`` holds one label, or several (written with flag = their count)."""

    labels: tuple[float, ...]
    id: int = 0
    id2: int = 0

    @property
    def label(self) -> float:
        return self.labels[0]


def pack_record(header: IRHeader, data: bytes) -> bytes:
    """A payload as MXNet's ``recordio.pack``: one label in the header, several as float32s after it."""
    if len(header.labels) == 1:
        return _HEADER.pack(0, header.labels[0], header.id, header.id2) + data
    return _HEADER.pack(len(header.labels), 0.0, header.id, header.id2) + np.asarray(header.labels, "<f4").tobytes() + data


def unpack_record(payload: bytes) -> tuple[IRHeader, bytes]:
    """(header, image bytes) of a payload; raises RecordIOError when it is too short for what its header says."""
    if len(payload) < _HEADER.size:
        raise RecordIOError(f"a record of {len(payload)} bytes is shorter than its {_HEADER.size}-byte header")
    flag, label, rid, rid2 = _HEADER.unpack_from(payload)
    if flag == 0:
        return IRHeader((float(label),), rid, rid2), payload[_HEADER.size :]
    end = _HEADER.size + 4 * flag
    if len(payload) < end:
        raise RecordIOError(f"a record says {flag} labels follow its header but holds {len(payload)} bytes")
    labels = tuple(float(v) for v in np.frombuffer(payload[_HEADER.size : end], "<f4"))
    return IRHeader(labels, rid, rid2), payload[end:]


def _parts(payload: bytes) -> list[tuple[int, bytes]]:
    """dmlc's split: (continuation flag, bytes) parts, cut where the magic sits at a 4-byte boundary."""
    cuts, start = [], 0
    for i in range(0, len(payload) - len(payload) % 4, 4):
        if payload[i : i + 4] == _MAGIC_BYTES:
            cuts.append(payload[start:i])
            start = i + 4
    cuts.append(payload[start:])
    if len(cuts) == 1:
        return [(0, cuts[0])]
    return [(1 if k == 0 else 3 if k == len(cuts) - 1 else 2, c) for k, c in enumerate(cuts)]


def _encode(payload: bytes) -> bytes:
    out = bytearray()
    for flag, part in _parts(payload):
        if len(part) > _MAX_PART:
            raise RecordIOError(f"a record part of {len(part)} bytes exceeds RecordIO's 29-bit length")
        out += _MAGIC_BYTES + struct.pack("<I", (flag << 29) | len(part)) + part + b"\0" * (-len(part) % 4)
    return bytes(out)


def write_recordio(rec: str | Path, records: Iterable[tuple[int, IRHeader, bytes]]) -> int:
    """Write (key, header, image bytes) records to ``rec`` and its ``.idx`` (both atomically); returns the count."""
    rec = Path(rec)
    idx = rec.with_suffix(".idx")
    n = 0
    # the index is replaced first (the inner context exits first): a reader that sees the new .rec sees its index
    with atomic_path(rec) as tmp_rec, atomic_path(idx) as tmp_idx:
        with open(tmp_rec, "wb") as fr, open(tmp_idx, "w") as fi:
            for key, header, data in records:
                fi.write(f"{key}\t{fr.tell()}\n")
                fr.write(_encode(pack_record(header, data)))
                n += 1
    return n


class RecordFile:
    """Random access to a ``.rec`` through its ``.idx`` (or offsets found by one scan when there is none).

    Reads use ``os.pread`` on a descriptor opened per process, so loader workers and threads share nothing.
    """

    def __init__(self, rec: str | Path, idx: str | Path | None = None) -> None:
        self.rec = Path(rec)
        self._fd: tuple[int, int] | None = None
        if not self.rec.is_file():
            raise RecordIOError(f"{self.rec} does not exist")
        self.size = self.rec.stat().st_size
        idx_path = Path(idx) if idx is not None else self.rec.with_suffix(".idx")
        self.offsets = self._read_index(idx_path) if idx_path.is_file() else dict(self._scan())
        self.keys = sorted(self.offsets)

    def _read_index(self, path: Path) -> dict[int, int]:
        offsets: dict[int, int] = {}
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            try:
                key, offset = int(fields[0]), int(fields[1])
            except (ValueError, IndexError):
                raise RecordIOError(f"{path}:{n}: expected 'key<TAB>offset', got {line[:60]!r}") from None
            if not 0 <= offset < self.size:
                raise RecordIOError(f"{path}:{n}: offset {offset} is outside {self.rec} ({self.size} bytes)")
            offsets[key] = offset
        return offsets

    def _scan(self) -> Iterator[tuple[int, int]]:
        """(key, offset) of every record in file order, keys counted from 0 (no index to name them)."""
        offset, key = 0, 0
        while offset < self.size:
            start = offset
            while True:
                flag, length = self._part_header(offset)
                offset += 8 + length + (-length % 4)
                if flag in (0, 3):
                    break
            yield key, start
            key += 1

    def _pread(self, n: int, offset: int) -> bytes:
        if offset + n > self.size:  # before allocating what a damaged length claims
            raise RecordIOError(f"{self.rec}: record at offset {offset} runs past the end of the file")
        if self._fd is None or self._fd[0] != os.getpid():  # a forked loader worker opens its own descriptor
            self._fd = (os.getpid(), os.open(self.rec, os.O_RDONLY))
        data = os.pread(self._fd[1], n, offset)
        if len(data) != n:
            raise RecordIOError(f"{self.rec}: record at offset {offset} runs past the end of the file")
        return data

    def _part_header(self, offset: int) -> tuple[int, int]:
        magic, word = struct.unpack("<II", self._pread(8, offset))
        if magic != MAGIC:
            raise RecordIOError(f"{self.rec}: no record starts at offset {offset} (magic {magic:#010x})")
        return word >> 29, word & _MAX_PART

    def read_payload(self, key: int) -> bytes:
        """The payload of record ``key`` (its parts joined with the magic, as dmlc's reader does)."""
        if key not in self.offsets:
            raise RecordIOError(f"{self.rec} has no record {key}")
        offset, parts = self.offsets[key], []
        while True:
            flag, length = self._part_header(offset)
            parts.append(self._pread(length, offset + 8))
            offset += 8 + length + (-length % 4)
            if flag in (0, 3):
                break
            if flag not in (1, 2):
                raise RecordIOError(f"{self.rec}: bad continuation flag {flag} at offset {offset}")
        return _MAGIC_BYTES.join(parts)

    def read_header(self, key: int) -> IRHeader:
        """The header of record ``key`` without reading its image (a few bytes, unless the record was split early)."""
        if key not in self.offsets:
            raise RecordIOError(f"{self.rec} has no record {key}")
        flag, length = self._part_header(self.offsets[key])
        if flag != 0 or length < _HEADER.size:
            return self.read(key)[0]
        count = _HEADER.unpack(self._pread(_HEADER.size, self.offsets[key] + 8))[0]
        want = _HEADER.size + 4 * count
        if want > length:
            raise RecordIOError(f"a record says {count} labels follow its header but holds {length} bytes")
        return unpack_record(self._pread(want, self.offsets[key] + 8))[0]

    def read(self, key: int) -> tuple[IRHeader, bytes]:
        """(header, image bytes) of record ``key``."""
        return unpack_record(self.read_payload(key))

    def header_bounds(self) -> tuple[int, int] | None:
        """insightface's header record 0: (first identity key, end key), or None when record 0 is not one. The
        float32 labels are checked against the keys present (they cannot name keys beyond them)."""
        if 0 not in self.offsets:
            return None
        header = self.read_header(0)
        if len(header.labels) < 2:
            return None
        first, end = header.labels[0], header.labels[1]
        top = self.keys[-1] + 1
        if not (np.isfinite(first) and np.isfinite(end) and 1 <= first <= end <= top + 1):
            raise RecordIOError(f"{self.rec}: header record 0 bounds keys {first:g}..{end:g}, but the keys end at {top}")
        return int(first), int(end)

    def image_keys(self) -> list[int]:
        """The keys of image records: insightface's header record bounds them, else every key."""
        bounds = self.header_bounds()
        if bounds is not None:
            return [k for k in self.keys if 1 <= k < bounds[0]]
        return list(self.keys)

    def __getstate__(self) -> dict:  # type: ignore[type-arg]
        return {**self.__dict__, "_fd": None}  # a descriptor does not cross processes

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None and self._fd[0] == os.getpid():  # type: ignore[index]
            os.close(self._fd[1])  # type: ignore[index]
