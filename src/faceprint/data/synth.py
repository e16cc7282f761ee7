"""Procedural face-like identities: stable traits per identity, nuisance variation per image.

Each identity fixes face shape, skin tone, hair, eye spacing and colour, brows, nose, mouth, marks
and accessories; each image varies pose, lighting, expression, background, blur, noise and occlusion,
so raw-pixel distance verifies poorly while a learned embedding does well. Deterministic per seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from faceprint.io import atomic_path

__all__ = ["IdentityTraits", "render_face", "sample_traits", "write_synthetic_dataset"]

_SKIN = np.array([[255, 224, 196], [234, 192, 160], [198, 146, 110], [160, 110, 75], [110, 72, 48], [70, 46, 32]])
_HAIR = np.array([[20, 18, 18], [70, 45, 25], [130, 85, 45], [215, 185, 110], [165, 65, 30], [170, 170, 170]])
_IRIS = np.array([[60, 40, 25], [40, 90, 140], [70, 120, 70], [110, 80, 40], [20, 20, 20]])


@dataclass(frozen=True)
class IdentityTraits:
    """What stays the same across all images of one identity (face-relative units)."""

    face_w: float
    face_h: float
    chin: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: int
    hairline: float
    eye_gap: float
    eye_y: float
    eye_size: float
    iris: tuple[int, int, int]
    brow_thick: float
    brow_slant: float
    nose_len: float
    nose_w: float
    mouth_w: float
    mouth_y: float
    lip: tuple[int, int, int]
    moles: tuple[tuple[float, float], ...]
    beard: bool
    glasses: bool


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> tuple[int, int, int]:
    i = rng.uniform(0, len(palette) - 1)
    lo, t = int(i), i - int(i)
    c = palette[lo] * (1 - t) + palette[min(lo + 1, len(palette) - 1)] * t + rng.normal(0, jitter, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def sample_traits(seed: int, identity: int) -> IdentityTraits:
    """Draw the stable traits of ``identity`` under ``seed``."""
    rng = np.random.default_rng([seed, identity, 0])
    n_moles = int(rng.integers(0, 3))
    return IdentityTraits(
        face_w=rng.uniform(0.50, 0.70), face_h=rng.uniform(0.66, 0.84), chin=rng.uniform(0.0, 1.0),
        skin=_colour(rng, _SKIN, 8), hair=_colour(rng, _HAIR, 10), hair_style=int(rng.integers(0, 4)),
        hairline=rng.uniform(0.15, 0.35), eye_gap=rng.uniform(0.28, 0.46), eye_y=rng.uniform(0.36, 0.46),
        eye_size=rng.uniform(0.07, 0.13), iris=_colour(rng, _IRIS, 10), brow_thick=rng.uniform(0.02, 0.06),
        brow_slant=rng.uniform(-0.06, 0.06), nose_len=rng.uniform(0.12, 0.26), nose_w=rng.uniform(0.08, 0.2),
        mouth_w=rng.uniform(0.22, 0.46), mouth_y=rng.uniform(0.70, 0.80), lip=_colour(rng, _SKIN[2:5] * [1.1, 0.7, 0.7], 15),
        moles=tuple((float(rng.uniform(-0.35, 0.35)), float(rng.uniform(0.35, 0.8))) for _ in range(n_moles)),
        beard=bool(rng.random() < 0.25), glasses=bool(rng.random() < 0.2),
    )


def _draw_face(t: IdentityTraits, rng: np.random.Generator, canvas: int) -> Image.Image:
    """Draw one frontal face (with per-image expression and yaw) on a transparent canvas."""
    img = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    c, s = canvas / 2, canvas
    fw, fh = t.face_w * s / 2, t.face_h * s / 2
    yaw = rng.uniform(-0.12, 0.12) * fw  # features slide sideways as the head turns
    top, bottom = c - fh, c + fh

    def px(u: float, v: float) -> tuple[float, float]:  # face coords: u in [-1,1] across, v in [0,1] down
        return c + u * fw + yaw * (1 - abs(u)), top + v * 2 * fh

    if t.hair_style == 2:  # long hair behind the face
        d.rounded_rectangle([c - fw * 1.25, top - fh * 0.15, c + fw * 1.25, c + fh * 0.9], radius=int(fw * 0.5), fill=t.hair)
    d.ellipse([c - fw, top, c + fw, bottom - t.chin * fh * 0.25], fill=t.skin)
    d.polygon([px(-0.8, 0.6), px(0.8, 0.6), px(0.25 + 0.2 * t.chin, 1.0), px(-0.25 - 0.2 * t.chin, 1.0)], fill=t.skin)
    if t.hair_style in (1, 2, 3):
        d.chord([c - fw * 1.05, top - fh * 0.12, c + fw * 1.05, top + fh * 2 * t.hairline * 2], 180, 360, fill=t.hair)
    if t.hair_style == 3:  # fringe
        d.polygon([px(-0.9, 0.05), px(0.6, 0.05), px(0.2, t.hairline + 0.12), px(-0.8, t.hairline + 0.08)], fill=t.hair)
    openness = rng.uniform(0.25, 1.0)
    raise_ = rng.uniform(-0.02, 0.03)
    for side in (-1, 1):
        ex, ey = px(side * t.eye_gap, t.eye_y)
        r = t.eye_size * fw
        d.ellipse([ex - r * 1.4, ey - r * openness, ex + r * 1.4, ey + r * openness], fill=(245, 245, 240))
        d.ellipse([ex - r * 0.7, ey - r * 0.7 * openness, ex + r * 0.7, ey + r * 0.7 * openness], fill=t.iris)
        by = ey - r * 2.0 - raise_ * fh * 2
        bw = t.brow_thick * fh * 2
        d.line([(ex - r * 1.6, by + side * t.brow_slant * fh), (ex + r * 1.6, by - side * t.brow_slant * fh)], fill=t.hair, width=max(1, int(bw)))
        if t.glasses:
            d.ellipse([ex - r * 2.2, ey - r * 1.8, ex + r * 2.2, ey + r * 1.8], outline=(30, 30, 30), width=max(1, int(s * 0.012)))
    nx, ny = px(0, t.eye_y + 0.05)
    nose_col = tuple(int(v * 0.78) for v in t.skin)
    d.polygon([(nx, ny), (nx - t.nose_w * fw, ny + t.nose_len * fh * 2), (nx + t.nose_w * fw, ny + t.nose_len * fh * 2)], fill=nose_col)
    mx, my = px(0, t.mouth_y)
    mw, smile, open_ = t.mouth_w * fw, rng.uniform(-0.06, 0.1) * fh, rng.uniform(0, 0.05) * fh
    if t.beard:
        d.chord([mx - fw * 0.7, my - fh * 0.2, mx + fw * 0.7, bottom + fh * 0.05], 0, 180, fill=t.hair)
    d.chord([mx - mw, my - abs(smile) - open_, mx + mw, my + abs(smile) + open_ + fh * 0.03],
            0 if smile >= 0 else 180, 180 if smile >= 0 else 360, fill=t.lip)
    for u, v in t.moles:
        mx_, my_ = px(u, v)
        r = s * 0.012
        d.ellipse([mx_ - r, my_ - r, mx_ + r, my_ + r], fill=(60, 35, 25))
    return img


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    grad = a * (1 - ramp) + b * ramp
    arr = np.broadcast_to(grad, (size, size, 3)) if rng.random() < 0.5 else np.transpose(np.broadcast_to(grad, (size, size, 3)), (1, 0, 2))
    return Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8))


def render_face(traits: IdentityTraits, size: int, rng: np.random.Generator) -> Image.Image:
    """Render one image of an identity with random pose, lighting, expression, blur, noise, occlusion."""
    canvas = 2 * size
    face = _draw_face(traits, rng, canvas)
    angle, scale = rng.uniform(-15, 15), rng.uniform(0.85, 1.15)
    shift = rng.uniform(-0.08, 0.08, 2) * canvas
    face = face.rotate(angle, resample=Image.BICUBIC, center=(canvas / 2, canvas / 2))
    new = max(1, int(canvas * scale))
    face = face.resize((new, new), Image.BICUBIC)
    img = _background(rng, canvas)
    img.paste(face, (int((canvas - new) / 2 + shift[0]), int((canvas - new) / 2 + shift[1])), face)
    if rng.random() < 0.3:  # occluder: a hand, a scarf, a sign
        d = ImageDraw.Draw(img)
        x0, y0 = rng.uniform(0, canvas * 0.7, 2)
        w, h = rng.uniform(canvas * 0.15, canvas * 0.4, 2)
        d.rectangle([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    arr = np.asarray(img.resize((size, size), Image.LANCZOS), dtype=np.float32)
    light_dir = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    shade = 1 + rng.uniform(0, 0.6) * (np.cos(light_dir) * xx + np.sin(light_dir) * yy)
    arr = arr * rng.uniform(0.6, 1.3) * shade[..., None]
    arr = (arr - arr.mean()) * rng.uniform(0.7, 1.3) + arr.mean()
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * size / 64))
    noisy = np.asarray(out, dtype=np.float32) + rng.normal(0, rng.uniform(0, 12), (size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def write_synthetic_dataset(
    out: str | Path, identities: int = 200, images_per_identity: int = 12, size: int = 64, seed: int = 0,
    progress: object | None = None,
) -> Path:
    """Write ``OUT/id_XXXX/XXXX.png``; existing complete files are kept, so an interrupted run resumes."""
    if identities < 1 or images_per_identity < 1 or size < 16:
        raise ValueError("need identities >= 1, images_per_identity >= 1 and size >= 16")
    out = Path(out)
    for i in range(identities):
        traits = sample_traits(seed, i)
        folder = out / f"id_{i:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(images_per_identity):
            path = folder / f"{j:04d}.png"
            if not path.exists():
                img = render_face(traits, size, np.random.default_rng([seed, i, j + 1]))
                with atomic_path(path) as tmp:
                    img.save(tmp, format="PNG")
        if progress is not None:
            progress(i + 1, identities)  # type: ignore[operator]
    return out
