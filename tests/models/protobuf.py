"""A tiny protobuf writer for tests: build GraphDefs by hand and strip control inputs for OpenCV."""

from __future__ import annotations

import struct

import numpy as np

from faceprint.models.importers.tf_graph import _fields


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num: int, value: bytes | int | float, wire: int | None = None) -> bytes:
    if isinstance(value, bool) or isinstance(value, int):
        return varint(num << 3) + varint(int(value))
    if isinstance(value, float):
        return varint(num << 3 | 5) + struct.pack("<f", value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def shape(dims: list[int]) -> bytes:
    return b"".join(field(2, field(1, d)) for d in dims)


def tensor(arr: np.ndarray, as_content: bool = True) -> bytes:
    dtype = {np.dtype("float32"): 1, np.dtype("int32"): 3}[arr.dtype]
    body = field(1, dtype) + field(2, shape(list(arr.shape)))
    if as_content:
        return body + field(4, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    if arr.dtype == np.float32:
        return body + field(5, struct.pack(f"<{arr.size}f", *arr.ravel()))
    return body + b"".join(field(7, int(v)) for v in arr.ravel())


def attr(key: str, value: bytes) -> bytes:
    return field(5, field(1, key) + field(2, value))


def node(name: str, op: str, inputs: list[str] = (), attrs: dict[str, bytes] | None = None) -> bytes:
    body = field(1, name) + field(2, op) + b"".join(field(3, i) for i in inputs)
    body += b"".join(attr(k, v) for k, v in (attrs or {}).items())
    return field(1, body)


def const(name: str, arr: np.ndarray, as_content: bool = True) -> bytes:
    return node(name, "Const", attrs={"value": field(8, tensor(arr, as_content)), "dtype": field(6, 1)})


def strip_control_inputs(data: bytes) -> bytes:
    """The same GraphDef without ``^name`` control inputs (OpenCV ≥ 4.9 rejects them on constants)."""
    out = bytearray()
    for num, wire, val in _fields(memoryview(data)):
        if num != 1 or wire != 2:
            continue
        body = bytearray()
        for n, w, v in _fields(val):
            if n == 3 and bytes(v).startswith(b"^"):
                continue
            body += field(n, v) if w == 2 else (varint(n << 3) + varint(v) if w == 0 else b"")
        out += field(1, bytes(body))
    return bytes(out)
