"""LFW verification with pretrained models (casia-webface, dlib-resnet) and their score fusion, 10-fold protocol.

Usage: python benchmarks/lfw.py --json PATH [--weights casia-webface,dlib-resnet] [--work DIR] [--backend onnx]
       [--workers N] [--engine local|ray]  (the MTCNN pipeline on the bulk runner: the same embeddings)
Runs the model layer's own pipeline (``faceprint.models.FaceEmbedder``, the one ``faceprint eval`` runs): MTCNN,
the face nearest the centre, cut the way each model expects (casia-webface: margin 32 at 160 px as davidsandberg's
align_dataset_mtcnn; dlib-resnet: dlib's 150-px chip from MTCNN's five points); images with no face fall back to
the centre crop and are counted as failures. Every image is embedded once with its mirror image in the same pass;
the flip rows use the flip rule (re-normalised). The fusion row sums the two models' squared distances with a
weight each fold chooses on its nine training folds. With dlib installed, dlib's own descriptor is timed against
ours on the same chips. JSON: the first model's MTCNN/no-flip figures at the top and every row under ``runs``
(each names its ``weights``).
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
from faceprint.evaluation.fusion import evaluate_fusion  # noqa: E402
from faceprint.evaluation.verification import embedding_distance  # noqa: E402
from faceprint.models import Embedder, FaceEmbedder, WeightsError, center_crop, flip_combine  # noqa: E402
from faceprint.models.embed import Preprocess  # noqa: E402

DLIB_DAT = SHARED / "weights/dlib/dlib_face_recognition_resnet_model_v1.dat"


def load_model(name: str, backend: str) -> Embedder:
    """A model from the cache, else converted in memory from ../shared (the user's cache is left alone)."""
    if name != "dlib-resnet":
        return casia_embedder(name, backend)
    try:
        return Embedder.from_pretrained(name, backend=backend)
    except WeightsError:
        from faceprint.backbones import create_backbone
        from faceprint.models.importers import read_dlib_resnet

        state, facts = read_dlib_resnet(DLIB_DAT)
        model = create_backbone("dlib_resnet", embedding_dim=128)
        model.load_state_dict(state)
        return Embedder(model, 150, name, backend, Preprocess(tuple(facts["mean"]), 256.0), align="dlib150")


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


def dlib_speed(embedder: Embedder, paths: list[Path], n: int = 256) -> dict[str, float]:
    """images/s of dlib's own descriptor and of ours on the same 150-px chips (batches of 32, this process's threads)."""
    try:
        import dlib
    except ImportError:
        return {}
    faces = FaceEmbedder(embedder)
    chips = [np.asarray(c) for c in faces.one_face([load_rgb(p) for p in paths[:n]])[0]]
    net = dlib.face_recognition_model_v1(str(DLIB_DAT))
    t0 = time.perf_counter()
    for i in range(0, n, 32):
        net.compute_face_descriptor(chips[i : i + 32])
    theirs = n / (time.perf_counter() - t0)
    x = embedder.preprocess(torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2))
    t0 = time.perf_counter()
    for i in range(0, n, 32):
        embedder(x[i : i + 32])
    ours = n / (time.perf_counter() - t0)
    return {"dlib_descriptor_images_per_s": round(theirs, 1), "ours_images_per_s": round(ours, 1),
            "ours_over_dlib": round(ours / theirs, 2)}


def embed_on_runner(embedder: Embedder, paths: list[Path], args: argparse.Namespace,
                    lfw: Path) -> tuple[np.ndarray, np.ndarray, float, list[Path]]:
    """``embed_mtcnn`` on the bulk runner (``--workers N`` processes or ``--engine ray``): an EmbedJob with the flip
    rule, split back into plain and mirrored rows (both unit vectors: [p ‖ m]/√2). The model goes into a private
    weights cache under --work so that the workers load it by name (the user's cache is left alone)."""
    import os

    from faceprint.bulk import EmbedJob, run_job
    from faceprint.models import PretrainedInfo, save_pretrained

    import shutil

    if embedder.model is None:
        raise SystemExit(f"{embedder.name} is an ONNX model: run it without --workers/--engine")
    home, before = args.work / "home", os.environ.get("FACEPRINT_HOME")
    os.environ["FACEPRINT_HOME"] = str(home)  # the workers inherit it; put back below
    if embedder.name == "dlib-resnet":
        info = PretrainedInfo(embedder.name, "dlib_resnet", 128, 150, {"channels": "RGB", "standardization": "fixed",
                              "mean": list(embedder.preprocess.mean), "scale": 1 / embedder.preprocess.std}, align="dlib150")
    else:
        info = PretrainedInfo(embedder.name)
    save_pretrained(embedder.model.state_dict(), info)  # type: ignore[union-attr]
    job = EmbedJob(str(lfw / "images"), str(args.work / f"bulk-{embedder.name}-{args.backend}"),
                   {"weights": embedder.name, "backend": args.backend}, align="mtcnn", flip=True, batch_size=args.batch,
                   model_id=embedder.fingerprint())
    if args.fresh:  # finished shards would be skipped (and the speed meaningless)
        shutil.rmtree(job.dst, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        report = run_job(job, args.engine, args.workers, ray_address=args.ray_address)
    finally:
        if before is None:
            os.environ.pop("FACEPRINT_HOME", None)
        else:
            os.environ["FACEPRINT_HOME"] = before
    seconds = time.perf_counter() - t0
    rows = {Path(p).resolve(): i for i, p in enumerate(np.loadtxt(f"{job.prefix}.csv", str, delimiter=",", skiprows=1,
                                                                    usecols=1, comments=None))}
    both = np.load(f"{job.prefix}.npy")[[rows[p.resolve()] for p in paths]]
    d = both.shape[1] // 2
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    no_face = [Path(p["path"]) for p in report.problems if p["issue"] == "no_face"]
    return unit(both[:, :d]).astype(np.float32), unit(both[:, d:]).astype(np.float32), len(paths) / seconds, no_face


def embeddings(embedder: Embedder, paths: list[Path], args: argparse.Namespace, lfw: Path) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    """Plain and mirrored rows for both alignments, cached in --work per model, backend and batch."""
    cache = args.work / f"embeddings-{embedder.name.replace('/', '_')}-{args.backend}-b{args.batch}.npz"
    if cache.is_file() and not args.fresh:  # reuse: the evaluation can be rerun in seconds
        saved = dict(np.load(cache))
        return saved, [str(p) for p in saved.pop("failures")]
    with Progress() as progress:
        if args.workers > 1 or args.engine != "local":
            m_plain, m_mirror, e2e, no_face = embed_on_runner(embedder, paths, args, lfw)
        else:
            m_plain, m_mirror, e2e, no_face = embed_mtcnn(FaceEmbedder(embedder), paths, args.batch, progress)
        c_plain, c_mirror, net = embed_center(embedder, paths, args.batch, progress)
    failures = [str(p.relative_to(lfw)) for p in no_face]
    saved = {"mtcnn_plain": m_plain, "mtcnn_mirrored": m_mirror, "center_crop_plain": c_plain,
             "center_crop_mirrored": c_mirror, "pipeline_speed": np.array(e2e), "speed": np.array(net)}
    args.work.mkdir(parents=True, exist_ok=True)
    np.savez(cache, failures=np.array(failures, dtype=str), **saved)
    return saved, failures


def _row(extra: dict, res: dict) -> dict:  # type: ignore[type-arg]
    print(f"{extra['weights']:28s} {extra['alignment']:12s} flip={extra['flip']!s:5s} accuracy {res['accuracy']:.4f} ± "
          f"{res['accuracy_std']:.4f}  VAL {res['val']:.4f} @ FAR {res['far']:.5f}  AUC {res['auc']:.4f}  EER {res['eer']:.4f}")
    return {**extra, **{k: round(float(v), 6) for k, v in res.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--lfw", type=Path, default=SHARED / "lfw")
    ap.add_argument("--weights", default="casia-webface,dlib-resnet", help="comma-separated names; two give a fusion row")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-lfw-embeddings",
                    help="embeddings are kept here (reused on the next run)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="re-embed even when --work holds embeddings of this model")
    ap.add_argument("--workers", type=int, default=1, help="the MTCNN pipeline on the bulk runner with N processes")
    ap.add_argument("--engine", default="local", help="local or ray (the bulk runner)")
    ap.add_argument("--ray-address", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pairs = read_lfw_pairs(args.lfw / "pairs.txt", args.lfw / "images")
    paths = pairs.unique_paths()
    row = {p: i for i, p in enumerate(paths)}
    a = np.array([row[p] for p in pairs.first])
    b = np.array([row[p] for p in pairs.second])
    runs, flipped, result = [], {}, {}
    for name in args.weights.split(","):
        embedder = load_model(name, args.backend)
        saved, failures = embeddings(embedder, paths, args, args.lfw)
        for variant in ("mtcnn", "center_crop"):
            plain, mirrored = torch.from_numpy(saved[f"{variant}_plain"]), torch.from_numpy(saved[f"{variant}_mirrored"])
            for flip in (False, True):
                # the flip rule: [emb ‖ emb(flip)] re-normalised (= mean of the two squared distances); davidsandberg's
                # un-normalised form spans distances 0..8, so the 0..4 threshold grid cuts its ROC short (auc_unnormalized)
                e = (flip_combine(plain, mirrored) if flip else plain).numpy()
                ver = evaluate_verification(e[a], e[b], pairs.issame, n_folds=pairs.n_folds)
                extra = {"weights": name, "alignment": variant, "flip": flip,
                         "threshold": round(float(np.mean(ver.best_thresholds)), 4),
                         "images_per_s": round(float(saved["speed"]), 2),
                         "failures": len(failures) if variant == "mtcnn" else 0}
                if flip:
                    raw = torch.cat([plain, mirrored], dim=1).numpy()
                    extra["auc_unnormalized"] = round(evaluate_verification(raw[a], raw[b], pairs.issame).auc, 6)
                if variant == "mtcnn":
                    extra["pipeline_images_per_s"] = round(float(saved["pipeline_speed"]), 2)
                    flipped.setdefault(name, {})[flip] = embedding_distance(e[a], e[b])
                runs.append(_row(extra, ver.summary()))
        if not result:
            top = next(r for r in runs if r["alignment"] == "mtcnn" and not r["flip"])
            result = {**top, "backend": args.backend, "n_pairs": len(pairs), "n_images": len(paths),
                      "failure_images": failures, "published_accuracy_rgb": 0.9905}
        if name == "dlib-resnet":
            result["dlib_speed"] = dlib_speed(embedder, paths)
    names = list(flipped)
    if len(names) == 2:
        for flip in (False, True):
            fused = evaluate_fusion([flipped[n][flip] for n in names], pairs.issame, pairs.n_folds)
            runs.append(_row({"weights": "+".join(names), "alignment": "mtcnn", "flip": flip,
                              "fold_weights": fused.fold_weights}, fused.verification.summary()))
    result["runs"] = runs
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
