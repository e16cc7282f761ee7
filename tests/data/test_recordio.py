"""RecordIO without MXNet: the bytes follow dmlc's format, and what we write reads back (records, index, header)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from faceprint.data.recordio import MAGIC, IRHeader, RecordFile, RecordIOError, pack_record, unpack_record, write_recordio
from faceprint.data.sources import dataset_kind, folder_to_recordio, open_dataset, open_recordio

MAGIC_LE = bytes([0x0A, 0x23, 0xD7, 0xCE])


def test_one_record_has_the_format_bytes(tmp_path: Path) -> None:
    data = b"\xff\xd8jpeg!"  # 7 bytes: the payload is 24 + 7 = 31, padded with one zero to 32
    write_recordio(tmp_path / "a.rec", [(5, IRHeader((3.0,), 7, 9), data)])
    raw = (tmp_path / "a.rec").read_bytes()
    assert raw[:4] == MAGIC_LE == struct.pack("<I", MAGIC)
    assert struct.unpack("<I", raw[4:8])[0] == 31  # continuation flag 0 in the top 3 bits, length 31 below
    assert raw[8:32] == struct.pack("<IfQQ", 0, 3.0, 7, 9)
    assert raw[32:39] == data and raw[39:] == b"\0" and len(raw) % 4 == 0
    assert (tmp_path / "a.idx").read_text() == "5\t0\n"


def test_several_labels_follow_the_header_with_flag_set() -> None:
    payload = pack_record(IRHeader((1.0, 2.5, 4.0)), b"img")
    assert payload[:24] == struct.pack("<IfQQ", 3, 0.0, 0, 0)
    assert np.frombuffer(payload[24:36], "<f4").tolist() == [1.0, 2.5, 4.0] and payload[36:] == b"img"
    header, data = unpack_record(payload)
    assert header.labels == (1.0, 2.5, 4.0) and data == b"img"
    with pytest.raises(RecordIOError, match="3 labels follow"):
        unpack_record(payload[:30])


def test_a_payload_holding_the_magic_is_split_and_joined_back(tmp_path: Path) -> None:
    # the header is 24 bytes, so the magic at data offset 4 sits at payload offset 28: 4-byte aligned
    data = b"abcd" + MAGIC_LE + b"efgh" + MAGIC_LE + b"ij"
    write_recordio(tmp_path / "m.rec", [(0, IRHeader((1.0,)), data)])
    raw = (tmp_path / "m.rec").read_bytes()
    first = struct.unpack("<I", raw[4:8])[0]
    assert first >> 29 == 1 and first & (2**29 - 1) == 28  # part 1: header + "abcd"
    middle = struct.unpack("<I", raw[8 + 28 + 4 : 8 + 28 + 8])[0]
    assert middle >> 29 == 2 and middle & (2**29 - 1) == 4  # "efgh"
    last = struct.unpack("<I", raw[8 + 28 + 8 + 4 + 4 : 8 + 28 + 8 + 4 + 8])[0]
    assert last >> 29 == 3 and last & (2**29 - 1) == 2 and raw[-4:] == b"ij\0\0"  # "ij", padded to 4
    rf = RecordFile(tmp_path / "m.rec")
    assert rf.read(0) == (IRHeader((1.0,)), data)
    (tmp_path / "m.idx").unlink()  # a scan finds the one record (three parts) without the index
    assert RecordFile(tmp_path / "m.rec").keys == [0] and RecordFile(tmp_path / "m.rec").read(0)[1] == data


def test_scan_without_index_and_bad_files(tmp_path: Path) -> None:
    recs = [(k, IRHeader((float(k % 2),)), bytes([k]) * (k + 1)) for k in range(6)]
    write_recordio(tmp_path / "s.rec", recs)
    offsets = RecordFile(tmp_path / "s.rec").offsets
    (tmp_path / "s.idx").unlink()
    scanned = RecordFile(tmp_path / "s.rec")
    assert scanned.offsets == offsets and [scanned.read(k)[1] for k in range(6)] == [r[2] for r in recs]
    (tmp_path / "s.idx").write_text("0\t999999\n")
    with pytest.raises(RecordIOError, match="outside"):
        RecordFile(tmp_path / "s.rec")
    (tmp_path / "s.idx").write_text("0\t4\n")  # not where a record starts
    with pytest.raises(RecordIOError, match="no record starts at offset 4"):
        RecordFile(tmp_path / "s.rec").read(0)


def test_insightface_layout_round_trip_of_a_folder(tiny_faces: Path, tmp_path: Path) -> None:
    folder = open_dataset(tiny_faces)
    rec = tmp_path / "faces" / "train.rec"
    rec.parent.mkdir()
    n = folder_to_recordio(folder, rec)
    rf = RecordFile(rec)
    head, _ = rf.read(0)
    c = len(folder.classes)
    assert n == len(folder) and head.labels == (n + 1.0, n + 1.0 + c)  # images 1..n, identities n+1..n+c
    span, _ = rf.read(n + 1)  # identity 0's record bounds its images
    assert span.labels == (1.0, 1.0 + folder.labels.count(0))
    assert dataset_kind(rec.parent) == "recordio"
    back = open_recordio(rec)
    assert len(back) == n and sorted(back.labels) == sorted(folder.labels) and len(back.classes) == c
    # the PNG files were re-encoded as JPEG at their own size: every item decodes at that size, close in value
    x = back.raw(0, 32)
    src = folder.raw(folder.labels.index(back.labels[0]), 32)
    assert x.shape == (3, 32, 32) and (x.float() - src.float()).abs().mean() < 12
