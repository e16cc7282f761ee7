"""Read a frozen TensorFlow GraphDef (``.pb``) without TensorFlow: a minimal protobuf wire-format reader.

Only what a frozen inference graph needs: node names, ops, inputs and attributes (constant tensors,
ints, floats, strings, shapes, lists). Field numbers follow tensorflow/core/framework/*.proto.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GraphDefError", "TfNode", "read_graph_def", "parse_graph_def"]

# tensorflow/core/framework/types.proto
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 19: np.dtype("<f2"),
}
_STRING = 7


class GraphDefError(ValueError):
    """The file is not a readable frozen GraphDef."""


@dataclass
class TfNode:
    """One NodeDef: ``attr`` values are Python scalars, strings, lists, shapes or numpy arrays."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attr: dict[str, Any] = field(default_factory=dict)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphDefError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise GraphDefError("varint too long")


def _fields(buf: memoryview):
    """Yield ``(field_number, wire_type, value)``; value is an int or a memoryview for length-delimited."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise GraphDefError("truncated fixed64")
            val, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise GraphDefError("truncated length-delimited field")
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            if pos + 4 > end:
                raise GraphDefError("truncated fixed32")
            val, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise GraphDefError(f"unsupported wire type {wire}")
        yield num, wire, val


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed_varints(val: Any, wire: int) -> list[int]:
    if wire == 0:
        return [_signed(val)]
    out, pos = [], 0
    while pos < len(val):
        v, pos = _varint(val, pos)
        out.append(_signed(v))
    return out


def _packed_floats(val: Any, wire: int, fmt: str = "<f") -> list[float]:
    if wire == 5:
        return [struct.unpack("<f", val.to_bytes(4, "little"))[0]]
    if wire == 1:
        return [struct.unpack("<d", val.to_bytes(8, "little"))[0]]
    size = struct.calcsize(fmt)
    return list(struct.unpack(f"<{len(val) // size}{fmt[1:]}", bytes(val)))


def _shape(buf: memoryview) -> list[int] | None:
    dims: list[int] = []
    for num, _, val in _fields(buf):
        if num == 2:
            dims.append(next((_signed(v) for n, _, v in _fields(val) if n == 1), 0))
        elif num == 3 and val:
            return None
    return dims


def _tensor(buf: memoryview) -> np.ndarray | list[bytes]:
    dtype, shape, content = 1, [], None
    values: list[Any] = []
    strings: list[bytes] = []
    for num, wire, val in _fields(buf):
        if num == 1:
            dtype = val
        elif num == 2:
            shape = _shape(val) or []
        elif num == 4:
            content = bytes(val)
        elif num == 5:
            values += _packed_floats(val, wire, "<f")
        elif num == 6:
            values += _packed_floats(val, wire, "<d")
        elif num in (7, 10, 11):  # int_val, int64_val, bool_val
            values += _packed_varints(val, wire)
        elif num == 8:
            strings.append(bytes(val))
    if dtype == _STRING:
        return strings
    if dtype not in _DTYPES:
        raise GraphDefError(f"unsupported tensor dtype {dtype}")
    np_dtype = _DTYPES[dtype]
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        arr = np.frombuffer(content, dtype=np_dtype).copy()
    elif values:
        arr = np.array(values, dtype=np_dtype)
        if arr.size == 1 and count > 1:  # a splatted scalar
            arr = np.full(count, arr[0], dtype=np_dtype)
    else:
        arr = np.zeros(count, dtype=np_dtype)
    if arr.size != count:
        raise GraphDefError(f"tensor has {arr.size} values for shape {shape}")
    return arr.reshape(shape)


def _list(buf: memoryview) -> list[Any]:
    out: list[Any] = []
    for num, wire, val in _fields(buf):
        if num == 2:
            out.append(bytes(val).decode("utf-8", "replace"))
        elif num in (3, 6):
            out += _packed_varints(val, wire)
        elif num == 4:
            out += _packed_floats(val, wire)
        elif num == 5:
            out += [bool(v) for v in _packed_varints(val, wire)]
        elif num == 7:
            out.append(_shape(val))
        elif num == 8:
            out.append(_tensor(val))
    return out


def _attr_value(buf: memoryview) -> Any:
    for num, wire, val in _fields(buf):
        if num == 1:
            return _list(val)
        if num == 2:
            return bytes(val).decode("utf-8", "replace")
        if num == 3:
            return _signed(val)
        if num == 4:
            return struct.unpack("<f", val.to_bytes(4, "little"))[0]
        if num == 5:
            return bool(val)
        if num == 6:
            return int(val)
        if num == 7:
            return _shape(val)
        if num == 8:
            return _tensor(val)
    return None


def _node(buf: memoryview) -> TfNode:
    node = TfNode("", "")
    for num, _, val in _fields(buf):
        if num == 1:
            node.name = bytes(val).decode()
        elif num == 2:
            node.op = bytes(val).decode()
        elif num == 3:
            node.inputs.append(bytes(val).decode())
        elif num == 5:
            key, value = "", None
            for n, _, v in _fields(val):
                if n == 1:
                    key = bytes(v).decode()
                elif n == 2:
                    value = _attr_value(v)
            node.attr[key] = value
    return node


def parse_graph_def(data: bytes) -> dict[str, TfNode]:
    """Nodes of a serialized GraphDef by name, in file order."""
    nodes: dict[str, TfNode] = {}
    for num, wire, val in _fields(memoryview(data)):
        if num == 1 and wire == 2:
            node = _node(val)
            nodes[node.name] = node
    if not nodes:
        raise GraphDefError("no nodes found: not a TensorFlow GraphDef")
    return nodes


def read_graph_def(path: str | Path) -> dict[str, TfNode]:
    """Parse the frozen graph at ``path``."""
    try:
        return parse_graph_def(Path(path).read_bytes())
    except GraphDefError as exc:
        raise GraphDefError(f"{path}: {exc}") from exc
