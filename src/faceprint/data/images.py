"""Robust image loading: any image Pillow opens becomes 8-bit RGB, or a clear ``ImageLoadError``."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["DEFAULT_MAX_PIXELS", "DETECT_SIDE", "IMAGE_EXTENSIONS", "ImageLoadError", "ImageTooLargeError", "decode_bytes",
           "decode_photo", "load_rgb", "to_rgb"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit
# Photos are reduced to this long side before face detection, wherever they come from (CLI, server, bulk runner):
# chosen by benchmarks/photos.py on 12-MP photos (faces found against time; see the README)
DETECT_SIDE = 1440


class ImageLoadError(ValueError):
    """An image could not be read; the message says why in one line."""


class ImageTooLargeError(ImageLoadError):
    """The image is over the pixel limit or a decompression bomb (an upload answers 413, not 415)."""


def _high_bit_depth_to_8bit(img: Image.Image) -> Image.Image:
    arr = np.asarray(img)
    if img.mode == "F":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
    else:  # I;16* or I (32-bit): use the full range of the stored depth
        bits = 16 if img.mode.startswith("I;16") or arr.max(initial=0) < 65536 else 32
        arr = arr.astype(np.float64) / (2**bits - 1) * 255
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha is composited on white, 16-bit is scaled, CMYK converted."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _high_bit_depth_to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB") if img.mode != "RGB" else img


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None) -> Image.Image:
    """Open ``path`` as an RGB image honouring EXIF orientation; first frame of animations (``max_side``: reduced
    as ``decode_bytes`` does).

    Raises:
        ImageLoadError: missing, empty, truncated, non-image, or larger than ``max_pixels``.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError(f"{path}: empty file (0 bytes)")
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: no such file") from None
    return _decode(path, str(path), max_pixels, None, max_side)


def decode_photo(data: bytes, name: str, max_side: int | None = DETECT_SIDE) -> Image.Image:
    """A photo file's bytes as detection sees them: any format Pillow reads, a JPEG decoded at a reduced DCT scale and
    every photo reduced to ``max_side`` on its long side (None: full size); ``info["original_size"]`` is its size."""
    return decode_bytes(data, name, formats=None, max_side=max_side)


def decode_bytes(data: bytes, name: str = "upload", max_pixels: int = DEFAULT_MAX_PIXELS,
                 formats: tuple[str, ...] | None = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"),
                 max_side: int | None = None) -> Image.Image:
    """Decode image bytes (an upload) to RGB; the type is sniffed from the bytes, never from a name.

    ``max_side``: reduce larger images to fit it (a JPEG is decoded at a reduced DCT scale, never at full size);
    the stored size is kept in ``image.info["original_size"]`` (after EXIF rotation).

    Raises:
        ImageLoadError: empty, not one of ``formats``, truncated, or larger than ``max_pixels``.
    """
    if not data:
        raise ImageLoadError(f"{name}: empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, max_pixels, formats, max_side)


def _decode(fp: Path | io.BytesIO, name: str, max_pixels: int, formats: tuple[str, ...] | None,
            max_side: int | None = None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp, formats=list(formats) if formats else None) as img:
                if img.width * img.height > max_pixels:
                    raise ImageTooLargeError(f"{name}: {img.width}×{img.height} exceeds the {max_pixels:,}-pixel limit (decompression bomb?)")
                img.seek(0)
                size = img.size
                if max_side is not None and max(size) > max_side:  # a JPEG decodes at 1/2, 1/4 or 1/8 scale (else a
                    # no-op): the smallest that keeps 90 % of max_side, so a 12-MP photo decodes at half size, not whole
                    f = 0.9 * max_side / max(size)
                    img.draft("RGB", (max(1, math.ceil(size[0] * f)), max(1, math.ceil(size[1] * f))))
                img.load()
                turned = img.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap width and height
                img = ImageOps.exif_transpose(img) or img
                img = to_rgb(img)
                if max_side is not None and max(img.size) > max_side:
                    img.thumbnail((max_side, max_side), Image.BILINEAR)
                img.info["original_size"] = (size[1], size[0]) if turned else size
                return img
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(f"{name}: no such file") from None
    except UnidentifiedImageError:
        kinds = f" (accepted: {', '.join(formats)})" if formats else ""
        raise ImageLoadError(f"{name}: not an image Pillow can read{kinds}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{name}: refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{name}: unreadable or truncated image ({exc})") from None
