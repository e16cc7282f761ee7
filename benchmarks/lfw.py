"""LFW verification with imported FaceNet weights: MTCNN-aligned and center-cropped, with and without flips.

Usage: python benchmarks/lfw.py --json PATH [--weights casia-webface] [--graph PB] [--work DIR] [--backend onnx]
Aligns ../shared/data/lfw with our MTCNN (margin 32, 160 px, the face nearest the centre, as davidsandberg's
align_dataset_mtcnn; images with no face fall back to the center crop and are counted as failures), embeds
every image once (the flipped copy in the same pass) and runs the 10-fold protocol (squared L2).
JSON: the MTCNN/no-flip figures at the top (accuracy, accuracy_std, val, far, auc, eer, alignment,
images_per_s, failures) and every variant under ``runs``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import SHARED, casia_embedder  # noqa: E402

from faceprint.align import MTCNN  # noqa: E402
from faceprint.align.folder import align_folder  # noqa: E402
from faceprint.data.images import load_rgb  # noqa: E402
from faceprint.data.transforms import fixed_standardize, pil_to_uint8  # noqa: E402
from faceprint.evaluation import evaluate_verification, read_lfw_pairs  # noqa: E402
from faceprint.inference import Embedder  # noqa: E402
CENTER_BOX = (50, 50, 200, 200)  # central 150×150 of a 250×250 LFW image


def center_crop(path: Path, size: int) -> Image.Image:
    img = load_rgb(path)  # grayscale LFW: the one channel is replicated to RGB
    w, h = img.size
    box = CENTER_BOX if (w, h) == (250, 250) else (w * 0.2, h * 0.2, w * 0.8, h * 0.8)
    return img.crop(box).resize((size, size), Image.BILINEAR)


def embed_images(embedder: Embedder, loaders: list, batch: int, progress: Progress, label: str) -> tuple[np.ndarray, float]:
    """Embeddings [emb(x) ‖ emb(flipped x)] of every image, and images/s of the network alone."""
    task = progress.add_task(label, total=len(loaders))
    out, net_s = [], 0.0
    for i in range(0, len(loaders), batch):
        x = fixed_standardize(torch.stack([pil_to_uint8(load(), embedder.image_size) for load in loaders[i : i + batch]]))
        t0 = time.perf_counter()
        out.append(torch.cat([embedder(x), embedder(x.flip(-1))], dim=1))
        net_s += time.perf_counter() - t0
        progress.update(task, completed=min(i + batch, len(loaders)))
    return torch.cat(out).numpy(), 2 * len(loaders) / net_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--lfw", type=Path, default=SHARED / "lfw")
    ap.add_argument("--weights", default="casia-webface", help="pretrained name or folder (else --graph is converted)")
    ap.add_argument("--graph", type=Path, default=SHARED / "weights/facenet-casia-webface/20180408-102900.pb")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-lfw-mtcnn-160-m32",
                    help="aligned crops go here (reused on the next run)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="re-embed even when --work holds embeddings of this model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pairs = read_lfw_pairs(args.lfw / "pairs.txt", args.lfw / "images")
    paths = pairs.unique_paths()
    embedder = casia_embedder(args.weights, args.backend, args.graph)
    with Progress() as progress:
        task = progress.add_task("MTCNN align", total=len(paths))
        report = align_folder(args.lfw / "images", args.work, MTCNN(), image_size=160, margin=32, mode="margin",
                              policy="center", batch_size=16, on_progress=lambda d, t: progress.update(task, completed=d, total=t))
        aligned = {p: args.work / p.relative_to(args.lfw / "images").with_suffix(".png") for p in paths}
        failures = [str(p.relative_to(args.lfw)) for p in paths if not aligned[p].is_file()]
        variants = {
            "mtcnn": [(lambda p=p: load_rgb(aligned[p])) if aligned[p].is_file() else (lambda p=p: center_crop(p, 160))
                      for p in paths],
            "center_crop": [lambda p=p: center_crop(p, 160) for p in paths],
        }
        embeddings = {}
        for name, loaders in variants.items():
            cache = args.work / f"embeddings-{name}-{embedder.name.replace('/', '_')}.npz"
            if cache.is_file() and not args.fresh:  # reuse: the evaluation can be rerun in seconds
                saved = np.load(cache)
                embeddings[name] = (saved["emb"], float(saved["speed"]))
                continue
            embeddings[name] = embed_images(embedder, loaders, args.batch, progress, f"embed ({name})")
            np.savez(cache, emb=embeddings[name][0], speed=embeddings[name][1])
    row = {p: i for i, p in enumerate(paths)}
    a = np.array([row[p] for p in pairs.first])
    b = np.array([row[p] for p in pairs.second])
    dim = embedder.dim
    runs = []
    for name, (emb, speed) in embeddings.items():
        for flip in (False, True):
            # [emb ‖ emb(flip)] re-normalized to unit length (= halved squared distances): davidsandberg's
            # un-normalized form spans distances 0..8, so the 0..4 threshold grid cuts its ROC short (auc_unnormalized)
            e = emb / np.linalg.norm(emb, axis=1, keepdims=True) if flip else emb[:, :dim]
            ver = evaluate_verification(e[a], e[b], pairs.issame, n_folds=pairs.n_folds)
            res = ver.summary()
            extra = {"threshold": round(float(np.mean(ver.best_thresholds)), 4)}
            if flip:
                extra["auc_unnormalized"] = round(evaluate_verification(emb[a], emb[b], pairs.issame).auc, 6)
            runs.append({"alignment": name, "flip": flip, **{k: round(float(v), 6) for k, v in res.items()}, **extra,
                         "images_per_s": round(speed, 2), "failures": len(failures) if name == "mtcnn" else 0})
            print(f"{name:12s} flip={flip!s:5s} accuracy {res['accuracy']:.4f} ± {res['accuracy_std']:.4f}  "
                  f"VAL {res['val']:.4f} @ FAR {res['far']:.5f}  AUC {res['auc']:.4f}  EER {res['eer']:.4f}")
    top = next(r for r in runs if r["alignment"] == "mtcnn" and not r["flip"])
    result = {**top, "weights": embedder.name, "backend": args.backend, "n_pairs": len(pairs), "n_images": len(paths),
              "align_images_per_s": round(report.images_per_second(), 2) if report.written else None,
              "failure_images": failures, "published_accuracy_rgb": 0.9905, "runs": runs}
    print(f"MTCNN: {len(failures)} of {len(paths)} images without a face (center crop used); network {top['images_per_s']} img/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
