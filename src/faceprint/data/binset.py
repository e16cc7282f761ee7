"""The field's verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ``calfw.bin``, ``cplfw.bin``):
a pickle of (list of encoded images, list of is-same flags), two images per pair, pairs in fold order.

Loading first walks the pickle's opcodes and allows only those that build bytes, strings, lists, tuples, bools,
numbers and None (no global lookup, call, object build, extension code or persistent id: the ways a pickle runs
code), with memo indices bounded; only then is it unpickled, by an unpickler that knows no class or function.
Anything else is refused with a one-line error.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceprint.io import atomic_write_bytes

__all__ = ["BinSet", "BinSetError", "read_bin", "write_bin"]

MAX_BIN_BYTES = 4 << 30
"""A .bin larger than this is refused before it is read (the five sets are 40–250 MB)."""


class BinSetError(ValueError):
    """A ``.bin`` verification set that cannot be used; the message names the file."""


_ALLOWED = {
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE",
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
    "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "EMPTY_LIST", "LIST", "APPEND", "APPENDS", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET", "MEMOIZE",
}


def _check_opcodes(data: bytes, path: Path) -> None:
    """Refuse any opcode outside the data-only set, a memo index beyond the opcodes' count, or a length beyond the
    file (before the unpickler allocates anything)."""
    n_ops = 0
    try:
        for op, arg, _ in pickletools.genops(data):
            n_ops += 1
            if op.name not in _ALLOWED:
                raise BinSetError(f"{path}: refused: the file uses the pickle opcode {op.name}, and a verification "
                                  "set holds only data")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") and int(arg) > n_ops:
                raise BinSetError(f"{path}: refused: memo index {arg} beyond the pickle's {n_ops} opcodes")
    except (ValueError, pickle.UnpicklingError) as exc:  # genops reports truncated or malformed data this way
        raise BinSetError(f"{path} is not a verification set pickle: {exc}") from None


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise BinSetError(f"refused: the file asks for {module}.{name}, and a verification set holds only data")


@dataclass
class BinSet:
    """Encoded images (2 per pair) and the pairs' is-same flags."""

    name: str
    images: list[bytes]
    issame: list[bool]

    def __len__(self) -> int:
        return len(self.issame)


def read_bin(path: str | Path) -> BinSet:
    """Load a ``.bin`` with the data-only unpickler and check its shape."""
    path = Path(path)
    if not path.is_file():
        raise BinSetError(f"{path} does not exist")
    if path.stat().st_size > MAX_BIN_BYTES:
        raise BinSetError(f"{path} is larger than {MAX_BIN_BYTES >> 30} GiB")
    data = path.read_bytes()
    _check_opcodes(data, path)  # lengths were read against the data itself: nothing larger than the file is built
    try:
        obj = _DataOnly(io.BytesIO(data), encoding="bytes").load()  # Python 2 pickles: str bins come back as bytes
    except BinSetError as exc:
        raise BinSetError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError) as exc:
        raise BinSetError(f"{path} is not a verification set pickle: {exc}") from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2 or not all(isinstance(x, (list, tuple)) for x in obj):
        raise BinSetError(f"{path}: expected (list of images, list of is-same flags)")
    bins, flags = obj
    if not all(isinstance(b, (bytes, bytearray)) for b in bins):
        raise BinSetError(f"{path}: every image must be encoded bytes")
    if not all(isinstance(s, bool) or (isinstance(s, int) and s in (0, 1)) for s in flags):
        raise BinSetError(f"{path}: every is-same flag must be a bool")
    if len(bins) != 2 * len(flags) or not flags:
        raise BinSetError(f"{path}: {len(bins)} images for {len(flags)} pairs (two per pair expected)")
    return BinSet(path.stem, [bytes(b) for b in bins], [bool(s) for s in flags])


def write_bin(path: str | Path, images: Sequence[bytes], issame: Sequence[bool]) -> Path:
    """Write a ``.bin`` (atomically) as insightface does: ``pickle.dump((bins, issame_list))``."""
    path = Path(path)
    if len(images) != 2 * len(issame) or not issame:
        raise BinSetError(f"{len(images)} images for {len(issame)} pairs (two per pair expected)")
    buf = io.BytesIO()
    pickle.dump(([bytes(b) for b in images], [bool(s) for s in issame]), buf, protocol=pickle.HIGHEST_PROTOCOL)
    atomic_write_bytes(path, buf.getvalue())
    return path
