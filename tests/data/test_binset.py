"""The field's .bin verification sets: written as insightface writes them, read back, and never run as code."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import pytest

from faceprint.data.binset import BinSetError, read_bin, write_bin


def test_round_trip_and_the_pickle_insightface_writes(tmp_path: Path) -> None:
    images, flags = [b"\xff\xd8a", b"\xff\xd8b", b"c", b"d"], [True, False]
    write_bin(tmp_path / "x.bin", images, flags)
    raw = (tmp_path / "x.bin").read_bytes()
    assert pickle.loads(raw) == (images, flags)  # a plain (bins, issame_list) pickle, as insightface dumps
    back = read_bin(tmp_path / "x.bin")
    assert back.images == images and back.issame == flags and back.name == "x" and len(back) == 2
    # a Python 2 pickle (protocol 2, images as str) loads with the images as bytes
    # PROTO 2, [SHORT_BINSTRING 'ab', SHORT_BINSTRING 'cd'], [NEWTRUE], TUPLE2: what Python 2's cPickle writes
    (tmp_path / "py2.bin").write_bytes(b"\x80\x02](U\x02abU\x02cde](\x88e\x86.")
    old = read_bin(tmp_path / "py2.bin")
    assert old.images == [b"ab", b"cd"] and old.issame == [True]


class _RunsCode:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps(([b"a", b"b"], [_RunsCode()])))
    with pytest.raises(BinSetError, match=r"refused: the file uses the pickle opcode (STACK_GLOBAL|GLOBAL)"):
        read_bin(evil)
    assert not (tmp_path / "pwned").exists()
    # a NumPy array needs a class too: refused the same way, before anything is built
    np = pytest.importorskip("numpy")
    (tmp_path / "np.bin").write_bytes(pickle.dumps(([b"a", b"b"], [np.bool_(True)])))
    with pytest.raises(BinSetError, match="refused: the file uses the pickle opcode STACK_GLOBAL"):
        read_bin(tmp_path / "np.bin")


def test_extension_codes_and_memo_bombs_are_refused_before_unpickling(tmp_path: Path) -> None:
    """An extension code the process has already used (in copyreg's cache) reaches os.system without find_class; a
    13-byte LONG_BINPUT would make the unpickler allocate gigabytes. Both are refused by the opcode walk."""
    import copyreg

    copyreg.add_extension("os", "system", 240)
    copyreg._extension_cache[240] = os.system  # type: ignore[attr-defined]  # as after an earlier load: no find_class
    try:
        payload = b"\x80\x02\x82\xf0X\x0a\x00\x00\x00touch pwnd\x85R."  # EXT1 240, 'touch pwnd', call
        (tmp_path / "ext.bin").write_bytes(payload)
        with pytest.raises(BinSetError, match="opcode EXT1"):
            read_bin(tmp_path / "ext.bin")
        assert not (tmp_path / "pwnd").exists() and not Path("pwnd").exists()
    finally:
        copyreg._extension_cache.pop(240, None)  # type: ignore[attr-defined]
        copyreg.remove_extension("os", "system", 240)
    (tmp_path / "memo.bin").write_bytes(b"\x80\x02N" + b"r" + (0x0FFFFFFF).to_bytes(4, "little") + b".")
    with pytest.raises(BinSetError, match="memo index 268435455"):
        read_bin(tmp_path / "memo.bin")
    (tmp_path / "huge.bin").write_bytes(b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc.")
    with pytest.raises(BinSetError, match="not a verification set pickle"):
        read_bin(tmp_path / "huge.bin")


@pytest.mark.parametrize(("obj", "message"), [
    ([b"a", b"b", b"c"], "expected"),
    (([b"a", b"b", b"c"], [True]), "3 images for 1 pairs"),
    (([b"a", "b"], [True]), "encoded bytes"),
    (([b"a", b"b"], [2]), "is-same flag"),
])
def test_malformed_sets_get_one_line_errors(tmp_path: Path, obj: object, message: str) -> None:
    (tmp_path / "m.bin").write_bytes(pickle.dumps(obj))
    with pytest.raises(BinSetError, match=message):
        read_bin(tmp_path / "m.bin")
    (tmp_path / "t.bin").write_bytes(b"not a pickle")
    with pytest.raises(BinSetError, match="not a verification set"):
        read_bin(tmp_path / "t.bin")
