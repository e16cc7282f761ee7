"""Face crops: facenet-pytorch's margin crop and 5-point similarity alignment to a canonical template."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["DLIB150_TEMPLATE", "DLIB_5POINT_TEMPLATE", "TEMPLATE_112", "margin_crop", "similarity_align", "umeyama"]

# Canonical 5-point template (eyes, nose tip, mouth corners) for 112×112 crops (ArcFace/insightface).
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64
)


# dlib's 5-point face template (its shape predictor's points: eye corners and the bottom of the nose) in a unit
# square; a chip of side S with padding p puts point q at (p + q) / (2p + 1) · S (dlib get_face_chip_details).
DLIB_5POINT_TEMPLATE = np.array(
    [[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677], [0.1205750620789, 0.2137274526848],
     [0.3340850613712, 0.2290642403242], [0.4901123135679, 0.6277975316475]], dtype=np.float64
)


# Where MTCNN's five points (eye centres, nose tip, mouth corners) fall in dlib's 150-px chip (padding 0.25),
# measured on 993 LFW faces by benchmarks/dlib_template.py (dlib's own chip transform applied to our landmarks).
DLIB150_TEMPLATE = np.array(
    [[48.788, 46.778], [102.721, 46.735], [75.754, 78.432], [52.067, 105.195], [98.826, 105.31]], dtype=np.float64
)


def margin_crop(img: Image.Image, box: np.ndarray, image_size: int = 160, margin: float = 0) -> Image.Image:
    """Crop ``box`` grown by ``margin`` output pixels (split over both sides) and resize to a square.

    facenet-pytorch semantics: the margin is in pixels of the resized output, so it is scaled by the
    box size first; the grown box is clamped to the image and cast to int; bilinear resize.
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    mx = margin * (x2 - x1) / (image_size - margin)
    my = margin * (y2 - y1) / (image_size - margin)
    w, h = img.size
    rect = (int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0)), int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h)))
    return img.crop(rect).resize((image_size, image_size), Image.BILINEAR)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 similarity (rotation, uniform scale, translation) that maps ``src`` points onto ``dst`` best."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rot = u @ d @ vt
    scale = np.trace(np.diag(sig) @ d) / s_c.var(0).sum()
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def similarity_align(img: Image.Image, landmarks: np.ndarray, image_size: int = 112,
                     template: np.ndarray | None = None) -> Image.Image:
    """Warp ``img`` so its 5 landmarks land on ``template`` (pixels of an ``image_size`` square; default the
    ArcFace template scaled to it)."""
    template = TEMPLATE_112 * (image_size / 112.0) if template is None else np.asarray(template, np.float64)
    m = umeyama(np.asarray(landmarks, np.float64).reshape(5, 2), template)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]  # PIL maps output pixels back to input
    return img.transform((image_size, image_size), Image.AFFINE, tuple(inv.flatten()), resample=Image.BILINEAR)
