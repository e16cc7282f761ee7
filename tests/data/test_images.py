"""Image loading over the bad-input corpus: every mode becomes RGB, every bad file a clear one-line error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.data.images import ImageLoadError, load_rgb


def _save(path: Path, img: Image.Image, **kw: object) -> Path:
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "CMYK", "P", "1", "I;16", "I", "F"])
def test_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray((np.arange(600).reshape(20, 30) * 100).astype(np.uint16))
    elif mode == "F":
        img = Image.fromarray(np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30))
    else:
        img = base.convert(mode)
    ext = {"CMYK": ".jpg", "F": ".tif", "I": ".tif"}.get(mode, ".png")
    out = load_rgb(_save(tmp_path / f"x{ext}", img))
    assert out.mode == "RGB" and out.size == (30, 20)


def test_16bit_png_uses_full_range(tmp_path: Path) -> None:
    arr = np.full((4, 4), 65535, np.uint16)
    arr[0, 0] = 0
    out = np.asarray(load_rgb(_save(tmp_path / "x.png", Image.fromarray(arr))))
    assert out[1, 1, 0] == 255 and out[0, 0, 0] == 0


def test_palette_transparency_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    img.info["transparency"] = 0
    out = np.asarray(load_rgb(_save(tmp_path / "x.png", img, transparency=0)))
    assert (out == 255).all()


@pytest.mark.parametrize(("orientation", "corner"), [(6, (-1, 0)), (8, (0, -1)), (3, (-1, -1)), (1, (0, 0))])
def test_exif_orientation_is_honoured(tmp_path: Path, orientation: int, corner: tuple[int, int]) -> None:
    """The stored top-left block (blue) must end where the orientation puts it, not only the size swap:
    6 turns the image 90° clockwise (top-left → top-right), 8 counter-clockwise (→ bottom-left), 3 by 180°."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[...] = (255, 0, 0)
    arr[:6, :6] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = np.asarray(load_rgb(_save(tmp_path / "x.png", Image.fromarray(arr), exif=exif)))
    assert out.shape[:2] == ((40, 20) if orientation in (6, 8) else (20, 40))
    x, y = corner  # column and row of the corner that must be blue (0 first, -1 last)
    row, col = (2 if y == 0 else out.shape[0] - 3), (2 if x == 0 else out.shape[1] - 3)
    assert out[row, col, 2] > 200 and out[row, col, 0] < 60
    assert (out[:, :, 2] > 200).sum() == 36  # exactly the block, nothing else moved in


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    path = tmp_path / "x.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert np.asarray(load_rgb(path))[0, 0, 0] > 200


@pytest.mark.parametrize("case", ["empty", "truncated_jpeg", "truncated_png", "text_as_jpg", "html", "missing"])
def test_bad_files_raise_clear_errors(tmp_path: Path, case: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(buf, format="JPEG" if "jpeg" in case else "PNG")
    data = {"empty": b"", "truncated_jpeg": buf.getvalue()[:200], "truncated_png": buf.getvalue()[:60],
            "text_as_jpg": b"hello, I am not an image\n", "html": b"<html><svg></svg></html>"}
    path = tmp_path / f"{case}.jpg"
    if case != "missing":
        path.write_bytes(data[case])
    with pytest.raises(ImageLoadError) as err:
        load_rgb(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_decompression_bomb_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "big.png", Image.new("L", (400, 300)))
    with pytest.raises(ImageLoadError, match="pixel limit"):
        load_rgb(path, max_pixels=100_000)
    assert load_rgb(path).size == (400, 300)


def test_one_pixel_image(tmp_path: Path) -> None:
    assert load_rgb(_save(tmp_path / "x.png", Image.new("RGB", (1, 1)))).size == (1, 1)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_max_side_reduces_large_images_and_keeps_their_size(fmt: str) -> None:
    from faceprint.data.images import decode_bytes

    arr = np.zeros((1500, 3000, 3), np.uint8)
    arr[:, :1500] = (250, 20, 20)  # left half red, right half blue
    arr[:, 1500:] = (20, 20, 250)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, quality=95)
    img = decode_bytes(buf.getvalue(), max_side=1000)
    assert img.size == (1000, 500) and img.info["original_size"] == (3000, 1500)
    out = np.asarray(img).astype(int)
    assert out[250, 100, 0] > 200 and out[250, 900, 2] > 200  # reduced, not cropped: both halves are there
    small = decode_bytes(buf.getvalue(), max_side=4000)
    assert small.size == (3000, 1500) and small.info["original_size"] == (3000, 1500)


def test_max_side_reports_the_rotated_size_of_an_exif_turned_photo() -> None:
    from faceprint.data.images import decode_bytes

    arr = np.zeros((1000, 2400, 3), np.uint8)
    arr[:100, :100] = 255  # a white stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned 90° clockwise: 1000 × 2400 upright
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", exif=exif, quality=95)
    img = decode_bytes(buf.getvalue(), max_side=1200)
    assert img.size == (500, 1200) and img.info["original_size"] == (1000, 2400)
    out = np.asarray(img).astype(int)
    assert out[10, -10].min() > 200 and out[-10, 10].max() < 60  # the stored top-left is now top-right


def test_decode_photo_reduces_a_12mp_jpeg_at_the_dct_scale_and_any_photo_to_the_detection_side() -> None:
    import io

    from faceprint.data.images import DETECT_SIDE, decode_photo

    for fmt, side, expected in (("JPEG", 2048, (2016, 1512)), ("PNG", 2048, (2048, 1536)),
                                ("JPEG", DETECT_SIDE, (DETECT_SIDE, DETECT_SIDE * 3 // 4))):
        buf = io.BytesIO()
        Image.new("RGB", (4032, 3024), (90, 120, 150)).save(buf, format=fmt)
        img = decode_photo(buf.getvalue(), f"phone.{fmt.lower()}", *(() if side == DETECT_SIDE else (side,)))
        # a phone JPEG decodes at half scale (never whole: 4032 // 2048 is 1, yet half keeps 98 % of the side);
        # a PNG has no DCT scale and is reduced to the side; by default, photos come to the detection side
        assert img.size == expected and img.info["original_size"] == (4032, 3024), (fmt, side)
    buf = io.BytesIO()
    Image.new("RGB", (1200, 800)).save(buf, format="JPEG")
    assert decode_photo(buf.getvalue(), "small.jpg").size == (1200, 800)  # under the side: as it is
    assert decode_photo(buf.getvalue(), "small.jpg", None).size == (1200, 800)
