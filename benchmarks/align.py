"""MTCNN detection speed on CPU: LFW images and a group photo at 540p/720p/1080p, single vs batched,
against dlib's HOG face detector (dlib-bin) measured in the same run on the same images.

Usage: python benchmarks/align.py --json PATH [--lfw-images 200] [--threads 2]
JSON: a list of records with case, images, batch, images_per_s, faces, peer_images_per_s, peer_faces,
mean_iou_with_peer (faces matched at IoU > 0.3), peer.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceprint.align import MTCNN
from faceprint.data.images import load_rgb

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


def run_ours(mtcnn: MTCNN, images: list[Image.Image], batch: int) -> tuple[float, list[np.ndarray]]:
    mtcnn.detect(images[:1])  # warm-up
    t0 = time.perf_counter()
    boxes = []
    for i in range(0, len(images), batch):
        boxes += [d.boxes for d in mtcnn.detect(images[i : i + batch])]
    return len(images) / (time.perf_counter() - t0), boxes


def run_peer(images: list[Image.Image]) -> tuple[float | None, list[np.ndarray]]:
    try:
        import dlib
    except ImportError:
        return None, []
    det = dlib.get_frontal_face_detector()
    arrays = [np.asarray(im) for im in images]
    det(arrays[0], 0)
    t0 = time.perf_counter()
    boxes = [np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in det(a, 0)], dtype=float).reshape(-1, 4) for a in arrays]
    return len(images) / (time.perf_counter() - t0), boxes


def agreement(ours: list[np.ndarray], peer: list[np.ndarray]) -> float | None:
    ious = []
    for a, b in zip(ours, peer):
        for box in b:
            best = max((_iou(box, o) for o in a), default=0.0)
            if best > 0.3:
                ious.append(best)
    return float(np.mean(ious)) if ious else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--lfw-images", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mtcnn = MTCNN()
    lfw = [load_rgb(p) for p in sorted((SHARED / "lfw" / "images").rglob("*.jpg"))[: args.lfw_images]]
    group = load_rgb(SHARED / "samples" / "multiface.jpg")
    cases = [("lfw_250px", lfw, 1), ("lfw_250px", lfw, 16)]
    for h in (540, 720, 1080):
        frame = group.resize((round(group.width * h / group.height), h), Image.BILINEAR)
        cases += [(f"group_{h}p", [frame] * 10, 1), (f"group_{h}p", [frame] * 10, 4)]
    records = []
    print(f"{'case':12} {'batch':>5} {'ours img/s':>10} {'dlib img/s':>10} {'ours faces':>10} {'dlib faces':>10} {'IoU':>5}")
    peer_cache: dict[str, tuple[float | None, list[np.ndarray]]] = {}
    for name, images, batch in cases:
        ips, boxes = run_ours(mtcnn, images, batch)
        if name not in peer_cache:
            peer_cache[name] = run_peer(images)
        pips, pboxes = peer_cache[name]
        rec = {"case": name, "images": len(images), "batch": batch, "images_per_s": round(ips, 2),
               "faces": int(sum(len(b) for b in boxes)), "peer": "dlib HOG (frontal_face_detector, upsample 0)",
               "peer_images_per_s": round(pips, 2) if pips else None,
               "peer_faces": int(sum(len(b) for b in pboxes)) if pips else None,
               "mean_iou_with_peer": agreement(boxes, pboxes) if pips else None}
        records.append(rec)
        f = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
        print(f"{name:12} {batch:>5} {ips:10.2f} {f(rec['peer_images_per_s']):>10} {rec['faces']:>10} {f(rec['peer_faces']):>10} {f(rec['mean_iou_with_peer']):>5}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
