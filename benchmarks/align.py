"""MTCNN detection speed on CPU: LFW images and a group photo at 540p/720p/1080p, single vs batched,
against dlib's HOG face detector (dlib-bin) measured in the same run on the same images.

The peer is set to search the same face sizes: dlib's HOG window is 80×80 px, so upsample 0 finds
faces from ~80 px and upsample 1 from ~40 px. Our default (min face 20 px) is compared with
upsample 1, min face 40 with upsample 1 and min face 80 with upsample 0; every record also carries
dlib's upsample-0 speed. Each figure is the median of --rounds timed passes.

Usage: python benchmarks/align.py --json PATH [--lfw-images 200] [--threads 2] [--rounds 3]
JSON: a list of records with case, min_face, images, batch, images_per_s, faces, peer (with its
upsample), peer_images_per_s, peer_faces, dlib_upsample0_images_per_s, mean_iou_with_peer (faces
matched at IoU > 0.3).
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


def run_ours(mtcnn: MTCNN, images: list[Image.Image], batch: int, rounds: int) -> tuple[float, list[np.ndarray]]:
    mtcnn.detect(images[:batch])  # warm-up
    speeds = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        boxes = []
        for i in range(0, len(images), batch):
            boxes += [d.boxes for d in mtcnn.detect(images[i : i + batch])]
        speeds.append(len(images) / (time.perf_counter() - t0))
    return float(np.median(speeds)), boxes


def run_peer(images: list[Image.Image], upsample: int, rounds: int) -> tuple[float | None, list[np.ndarray]]:
    try:
        import dlib
    except ImportError:
        return None, []
    det = dlib.get_frontal_face_detector()
    arrays = [np.asarray(im) for im in images]
    det(arrays[0], upsample)
    speeds = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        boxes = [np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in det(a, upsample)], dtype=float).reshape(-1, 4)
                 for a in arrays]
        speeds.append(len(images) / (time.perf_counter() - t0))
    return float(np.median(speeds)), boxes


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
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lfw = [load_rgb(p) for p in sorted((SHARED / "lfw" / "images").rglob("*.jpg"))[: args.lfw_images]]
    group = load_rgb(SHARED / "samples" / "multiface.jpg")
    cases = [("lfw_250px", lfw, 20, 1), ("lfw_250px", lfw, 20, 16)]
    for h in (540, 720, 1080):
        frame = group.resize((round(group.width * h / group.height), h), Image.BILINEAR)
        frames = [frame] * 10
        cases += [(f"group_{h}p", frames, 20, 1), (f"group_{h}p", frames, 20, 4), (f"group_{h}p", frames, 40, 1),
                  (f"group_{h}p", frames, 80, 1)]
    detectors = {m: MTCNN(min_face_size=m) for m in (20, 40, 80)}
    records = []
    print(f"{'case':12} {'min face':>8} {'batch':>5} {'ours img/s':>10} {'peer':>11} {'peer img/s':>10} {'dlib up0':>8} "
          f"{'faces':>9} {'IoU':>5}")
    peer_cache: dict[tuple[str, int], tuple[float | None, list[np.ndarray]]] = {}
    f = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    for name, images, min_face, batch in cases:
        ips, boxes = run_ours(detectors[min_face], images, batch, args.rounds)
        upsample = 0 if min_face >= 80 else 1
        for up in {upsample, 0}:
            if (name, up) not in peer_cache:
                peer_cache[(name, up)] = run_peer(images, up, args.rounds)
        pips, pboxes = peer_cache[(name, upsample)]
        rec = {"case": name, "min_face": min_face, "images": len(images), "batch": batch, "images_per_s": round(ips, 2),
               "faces": int(sum(len(b) for b in boxes)), "peer": f"dlib HOG (frontal_face_detector, upsample {upsample})",
               "peer_images_per_s": round(pips, 2) if pips else None,
               "peer_faces": int(sum(len(b) for b in pboxes)) if pips else None,
               "dlib_upsample0_images_per_s": round(peer_cache[(name, 0)][0], 2) if pips else None,  # type: ignore[arg-type]
               "mean_iou_with_peer": agreement(boxes, pboxes) if pips else None}
        records.append(rec)
        print(f"{name:12} {min_face:>8} {batch:>5} {ips:10.2f} {'dlib up' + str(upsample):>11} {f(rec['peer_images_per_s']):>10} "
              f"{f(rec['dlib_upsample0_images_per_s']):>8} {rec['faces']:>4}/{f(rec['peer_faces']):<4} "
              f"{f(rec['mean_iou_with_peer'])[:4]:>5}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    tmp.replace(args.json)


if __name__ == "__main__":
    main()
