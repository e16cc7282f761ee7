"""The field's verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ``calfw.bin``, ``cplfw.bin``):
a pickle of (list of encoded images, list of is-same flags), two images per pair, pairs in fold order.

Loading uses an unpickler that knows no class or function at all, so the file can only build bytes, lists,
tuples, bools and numbers; anything else (the way a pickle runs code) is refused with a one-line error.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BinSet", "BinSetError", "read_bin", "write_bin"]

MAX_BIN_BYTES = 4 << 30
"""A .bin larger than this is refused before it is read (the five sets are 40–250 MB)."""


class BinSetError(ValueError):
    """A ``.bin`` verification set that cannot be used; the message names the file."""


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
    try:
        with open(path, "rb") as f:
            obj = _DataOnly(f, encoding="bytes").load()  # Python 2 pickles: str bins come back as bytes
    except BinSetError as exc:
        raise BinSetError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path
