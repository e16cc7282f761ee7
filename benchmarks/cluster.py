"""Clustering faces against true identities: agglomerative vs DBSCAN vs Chinese whispers on ORL and an LFW subset.

Usage: python benchmarks/cluster.py --json PATH [--thresholds 0.9 1.1 1.3] [--lfw-min 4] [--work DIR]
Embeddings: the imported CASIA-WebFace model on MTCNN-aligned faces (ORL aligned here; LFW reuses the
embeddings benchmarks/lfw.py caches in its work folder, else embeds the aligned crops). The LFW subset is
every person with at least --lfw-min images. Figures per method and threshold: pairwise precision, recall,
F1, NMI, clusters, seconds. JSON: {dataset: {faces, identities, results: [...]}}.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import SHARED, aligned_orl, casia_embedder, default_work  # noqa: E402

from faceprint.cluster import METHODS, cluster, cluster_metrics  # noqa: E402
from faceprint.data.folder import scan_identity_folder  # noqa: E402
from faceprint.evaluation import read_lfw_pairs  # noqa: E402


def lfw_subset(min_images: int, lfw_work: Path) -> tuple[np.ndarray, np.ndarray]:
    pairs = read_lfw_pairs(SHARED / "lfw" / "pairs.txt", SHARED / "lfw" / "images")
    paths = pairs.unique_paths()
    cached = sorted(lfw_work.glob("embeddings-mtcnn-*.npz"))
    if cached:
        emb = np.load(cached[0])["emb"][:, :512]
    else:
        crops = [lfw_work / p.relative_to(SHARED / "lfw" / "images").with_suffix(".png") for p in paths]
        emb, _, _ = casia_embedder().embed_paths(crops)
    names = np.array([p.parent.name for p in paths])
    keep_names = {n for n, c in zip(*np.unique(names, return_counts=True)) if c >= min_images}
    keep = np.array([n in keep_names for n in names])
    return emb[keep], names[keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 1.1, 1.3])
    ap.add_argument("--lfw-min", type=int, default=4)
    ap.add_argument("--work", type=Path, default=default_work())
    ap.add_argument("--lfw-work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-lfw-mtcnn-160-m32")
    args = ap.parse_args()
    torch.set_num_threads(2)
    folder = scan_identity_folder(aligned_orl(args.work))
    orl_emb, ok, _ = casia_embedder().embed_paths(folder.paths)
    orl_names = np.array([p.parent.name for p in ok])
    datasets = {"orl": (orl_emb, orl_names), f"lfw_min{args.lfw_min}": lfw_subset(args.lfw_min, args.lfw_work)}
    out = {}
    for name, (x, truth) in datasets.items():
        rows = []
        for t in args.thresholds:
            for method in METHODS:
                t0 = time.perf_counter()
                labels = cluster(x, t, method)
                m = cluster_metrics(truth, labels)
                rows.append({"method": method, "threshold": t, "seconds": round(time.perf_counter() - t0, 2),
                             **{k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}})
                print(f"{name:10s} t={t:.2f} {method:17s} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} "
                      f"NMI {m['nmi']:.3f} clusters {m['clusters']}/{m['identities']} ({rows[-1]['seconds']} s)", flush=True)
        out[name] = {"faces": int(len(x)), "identities": int(len(set(truth))), "results": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
