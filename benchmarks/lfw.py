"""LFW verification with imported FaceNet weights: MTCNN-aligned and center-cropped, with and without flips.

Usage: python benchmarks/lfw.py --json PATH [--weights casia-webface] [--graph PB] [--work DIR] [--backend onnx]
Runs the model layer's own pipeline (``faceprint.models.FaceEmbedder``, the one ``faceprint eval`` runs): MTCNN,
margin 32, 160 px, the face nearest the centre (davidsandberg's align_dataset_mtcnn); images with no face fall
back to the centre crop and are counted as failures. Every image is embedded once with its mirror image in the
same pass, and the 10-fold protocol runs on squared L2; the flip rows use the flip rule (re-normalised).
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
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import SHARED, casia_embedder  # noqa: E402

from faceprint.data.images import load_rgb  # noqa: E402
from faceprint.data.transforms import pil_to_uint8  # noqa: E402
from faceprint.evaluation import evaluate_verification, read_lfw_pairs  # noqa: E402
from faceprint.models import Embedder, FaceEmbedder, center_crop, flip_combine  # noqa: E402


def embed_center(embedder: Embedder, paths: list[Path], batch: int, progress: Progress) -> tuple[np.ndarray, np.ndarray, float]:
    """Plain and mirrored embeddings of every image's centre crop, and images/s of the network alone."""
    task = progress.add_task("embed (center_crop)", total=len(paths))
    plain, mirrored, net_s = [], [], 0.0
    for i in range(0, len(paths), batch):
        crops = [center_crop(load_rgb(p), embedder.image_size) for p in paths[i : i + batch]]
        x = embedder.preprocess(torch.stack([pil_to_uint8(c, embedder.image_size) for c in crops]))
        t0 = time.perf_counter()
        plain.append(embedder(x))
        mirrored.append(embedder(x.flip(-1)))
        net_s += time.perf_counter() - t0
        progress.update(task, completed=min(i + batch, len(paths)))
    return torch.cat(plain).numpy(), torch.cat(mirrored).numpy(), 2 * len(paths) / net_s


def embed_mtcnn(faces: FaceEmbedder, paths: list[Path], batch: int, progress: Progress) -> tuple[np.ndarray, np.ndarray, float, list[Path]]:
    """The pipeline's plain and mirrored embeddings (as ``faceprint eval``), end-to-end images/s, no-face paths."""
    task = progress.add_task("MTCNN + embed", total=len(paths))
    t0 = time.perf_counter()
    plain, mirrored, ok, failed = faces.embed_views(paths, batch, on_batch=lambda n: progress.update(task, completed=n))
    if failed or len(ok) != len(paths):
        raise SystemExit(f"unreadable images: {failed[:3]}")
    return plain.numpy(), mirrored.numpy(), len(paths) / (time.perf_counter() - t0), list(faces.no_face)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--lfw", type=Path, default=SHARED / "lfw")
    ap.add_argument("--weights", default="casia-webface", help="pretrained name or folder (else --graph is converted)")
    ap.add_argument("--graph", type=Path, default=SHARED / "weights/facenet-casia-webface/20180408-102900.pb")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-lfw-embeddings",
                    help="embeddings are kept here (reused on the next run)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="re-embed even when --work holds embeddings of this model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pairs = read_lfw_pairs(args.lfw / "pairs.txt", args.lfw / "images")
    paths = pairs.unique_paths()
    embedder = casia_embedder(args.weights, args.backend, args.graph)
    cache = args.work / f"embeddings-{embedder.name.replace('/', '_')}-{args.backend}-b{args.batch}.npz"
    if cache.is_file() and not args.fresh:  # reuse: the evaluation can be rerun in seconds
        saved = dict(np.load(cache))
        failures = [str(p) for p in saved.pop("failures")]
    else:
        with Progress() as progress:
            m_plain, m_mirror, e2e, no_face = embed_mtcnn(FaceEmbedder(embedder), paths, args.batch, progress)
            c_plain, c_mirror, net = embed_center(embedder, paths, args.batch, progress)
        failures = [str(p.relative_to(args.lfw)) for p in no_face]
        saved = {"mtcnn_plain": m_plain, "mtcnn_mirrored": m_mirror, "center_crop_plain": c_plain,
                 "center_crop_mirrored": c_mirror, "pipeline_speed": np.array(e2e), "speed": np.array(net)}
        args.work.mkdir(parents=True, exist_ok=True)
        np.savez(cache, failures=np.array(failures, dtype=str), **saved)
    row = {p: i for i, p in enumerate(paths)}
    a = np.array([row[p] for p in pairs.first])
    b = np.array([row[p] for p in pairs.second])
    runs = []
    for name in ("mtcnn", "center_crop"):
        plain, mirrored = torch.from_numpy(saved[f"{name}_plain"]), torch.from_numpy(saved[f"{name}_mirrored"])
        for flip in (False, True):
            # the flip rule: [emb ‖ emb(flip)] re-normalised (= mean of the two squared distances); davidsandberg's
            # un-normalised form spans distances 0..8, so the 0..4 threshold grid cuts its ROC short (auc_unnormalized)
            e = (flip_combine(plain, mirrored) if flip else plain).numpy()
            ver = evaluate_verification(e[a], e[b], pairs.issame, n_folds=pairs.n_folds)
            res = ver.summary()
            extra = {"threshold": round(float(np.mean(ver.best_thresholds)), 4)}
            if flip:
                raw = torch.cat([plain, mirrored], dim=1).numpy()
                extra["auc_unnormalized"] = round(evaluate_verification(raw[a], raw[b], pairs.issame).auc, 6)
            if name == "mtcnn":
                extra["pipeline_images_per_s"] = round(float(saved["pipeline_speed"]), 2)
            runs.append({"weights": embedder.name, "alignment": name, "flip": flip,
                         **{k: round(float(v), 6) for k, v in res.items()}, **extra,
                         "images_per_s": round(float(saved["speed"]), 2), "failures": len(failures) if name == "mtcnn" else 0})
            print(f"{name:12s} flip={flip!s:5s} accuracy {res['accuracy']:.4f} ± {res['accuracy_std']:.4f}  "
                  f"VAL {res['val']:.4f} @ FAR {res['far']:.5f}  AUC {res['auc']:.4f}  EER {res['eer']:.4f}")
    top = next(r for r in runs if r["alignment"] == "mtcnn" and not r["flip"])
    result = {**top, "weights": embedder.name, "backend": args.backend, "n_pairs": len(pairs), "n_images": len(paths),
              "pipeline_images_per_s": round(float(saved["pipeline_speed"]), 2),
              "failure_images": failures, "published_accuracy_rgb": 0.9905, "runs": runs}
    print(f"MTCNN: {len(failures)} of {len(paths)} images without a face (center crop used); network "
          f"{top['images_per_s']} img/s; MTCNN + 2 views end to end {top['pipeline_images_per_s']} img/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
