"""A generated corpus of bad and awkward inputs (issue 9): every file a user's photo folder may hold."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

GOOD_SIZE = 40


def _face(seed: int, size: int = GOOD_SIZE) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _png_bomb() -> bytes:
    """A valid PNG header declaring 100,000 × 100,000 pixels, with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def bad_files() -> dict[str, bytes]:
    """Name → bytes of every unreadable file in the corpus (each must give a clear error or a listed skip)."""
    buf = io.BytesIO()
    _face(1).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    buf = io.BytesIO()
    _face(2).save(buf, format="PNG")
    png = buf.getvalue()
    return {
        "zero-byte.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "truncated.png": png[: len(png) // 3],
        "text-named.jpg": b"this is a text file, not a photo\n",
        "page.svg.jpg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "page.html.png": b"<html><body>hello</body></html>",
        "bomb.png": _png_bomb(),
    }


def awkward_images() -> dict[str, Image.Image]:
    """Readable but unusual images (each must load, and be embedded like any other)."""
    palette = _face(3).convert("P")
    palette.info["transparency"] = 0
    return {
        "cmyk.jpg": _face(4).convert("CMYK"),
        "sixteen-bit.png": Image.fromarray((np.random.default_rng(5).integers(0, 65535, (40, 40))).astype(np.uint16)),
        "palette-transparent.png": palette,
        "one-pixel.png": _face(6, 1),
        "grayscale.png": _face(7).convert("L"),
        "rgba.png": _face(8).convert("RGBA"),
        "unicode ü é 名字.png": _face(9),
        "new\nline.png": _face(10),
        "png-named.jpg": _face(11),
    }


def write_corpus(root: Path, identities: int = 3, good_per_identity: int = 3) -> dict[str, int]:
    """``root/<identity>/...``: good faces, the awkward images, the bad files, an animated GIF, an EXIF-rotated
    JPEG and a symlink loop; returns counts."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(identities):
        d = root / f"person{i}"
        d.mkdir(exist_ok=True)
        for j in range(good_per_identity):
            _face(100 * i + j).save(d / f"good{j}.png")
    odd = root / "person0"
    for name, img in awkward_images().items():
        fmt = "JPEG" if name.endswith(".jpg") and img.mode in ("RGB", "CMYK", "L") and "png-named" not in name else "PNG"
        img.save(odd / name, format=fmt)
    frames = [_face(20 + k) for k in range(3)]
    frames[0].save(odd / "animated.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display: a phone photo held upright
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(odd / "rotated.jpg", exif=exif.tobytes())
    bad = root / "person1"
    for name, data in bad_files().items():
        (bad / name).write_bytes(data)
    (root / "empty_person").mkdir(exist_ok=True)
    loop = root / "person2" / "loop"
    if not loop.exists():
        os.symlink(root / "person2", loop, target_is_directory=True)
    return {"bad": len(bad_files()), "awkward": len(awkward_images()) + 2, "good": identities * good_per_identity}
