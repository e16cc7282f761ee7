"""Where MTCNN's five landmarks fall in dlib's 150-px face chip: the template faceprint aligns dlib-resnet faces to.

Usage: python benchmarks/dlib_template.py --json PATH [--images 1000]   (needs dlib-bin: pip install ".[bench]")
For LFW images where dlib's HOG detector and our MTCNN find the same face, dlib's own chip transform (its
5-point shape predictor fitted to its template, padding 0.25, 150 px) maps our MTCNN landmarks into chip
coordinates; the mean position of each is the template (``DLIB150_TEMPLATE`` in faceprint.align.crop), and
the spread says how well one similarity from MTCNN points reproduces dlib's chip.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import SHARED  # noqa: E402

from faceprint.align import MTCNN, umeyama  # noqa: E402
from faceprint.align.crop import DLIB_5POINT_TEMPLATE  # noqa: E402
from faceprint.data.images import load_rgb  # noqa: E402


def dlib_chip_points(padding: float = 0.25, size: int = 150) -> np.ndarray:
    """dlib's 5-point template in chip pixels (get_face_chip_details)."""
    return (padding + DLIB_5POINT_TEMPLATE) / (2 * padding + 1) * size


def main() -> None:
    import dlib

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--images", type=int, default=1000)
    args = ap.parse_args()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(SHARED / "weights/dlib/shape_predictor_5_face_landmarks.dat"))
    paths = sorted((SHARED / "lfw/images").rglob("*.jpg"))[:: max(1, 7701 // args.images)][: args.images]
    mtcnn, target, mapped = MTCNN(), dlib_chip_points(), []
    for path in paths:
        img = load_rgb(path)
        arr = np.asarray(img)
        dets = detector(arr, 1)
        found = mtcnn.detect(img)[0]
        if len(dets) == 0 or len(found) == 0:
            continue
        d = max(dets, key=lambda r: r.area())
        centre = np.array([(d.left() + d.right()) / 2, (d.top() + d.bottom()) / 2])
        k = int(np.argmin(((found.boxes[:, :2] + found.boxes[:, 2:4]) / 2 - centre).__pow__(2).sum(1)))
        parts = np.array([(p.x, p.y) for p in predictor(arr, d).parts()], np.float64)
        m = umeyama(parts, target)  # image → dlib chip
        mapped.append(found.landmarks[k] @ m[:, :2].T + m[:, 2])
    pts = np.stack(mapped)
    template = pts[::2].mean(0)  # fitted on every other face, checked on the rest
    # our chip against dlib's, per held-out face: where our chip's corners and centre land in dlib's chip
    grid = np.array([[0, 0], [150, 0], [0, 150], [150, 150], [75, 75]], np.float64)
    errors = []
    for lm in pts[1::2]:  # lm: MTCNN points already in dlib chip coordinates
        m = umeyama(template, lm)  # our chip → dlib chip
        errors.append(float(np.linalg.norm(grid @ m[:, :2].T + m[:, 2] - grid, axis=1).mean()))
    out = {"faces": len(pts), "images": len(paths), "template_150": np.round(template, 3).tolist(),
           "spread_px_std": np.round(pts.std(0), 3).tolist(),
           "chip_offset_px_median": round(float(np.median(errors)), 3),
           "chip_offset_px_p90": round(float(np.percentile(errors, 90)), 3)}
    print(json.dumps(out, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
