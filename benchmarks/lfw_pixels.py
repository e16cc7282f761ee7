"""Full LFW 6,000-pair 10-fold protocol with a trivial embedding (raw pixels), as a smoke benchmark.

Usage: python benchmarks/lfw_pixels.py [--lfw ../shared/data/lfw] [--size 64] --json PATH
Prints the figures and the embedding throughput; writes accuracy, accuracy_std, val, far, auc, eer,
n_pairs, seconds and images_per_s to PATH.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from faceprint.models.embed import pixel_embed_fn
from faceprint.evaluation import evaluate_pair_list, read_lfw_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw")
    ap.add_argument("--size", type=int, default=64, help="images are resized to size×size before flattening")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    pairs = read_lfw_pairs(args.lfw / "pairs.txt", args.lfw / "images")
    t0 = time.perf_counter()
    report = evaluate_pair_list(pixel_embed_fn, pairs, args.size)
    seconds = time.perf_counter() - t0
    out = {**report.summary(), "missing_pairs": pairs.missing, "seconds": round(seconds, 2),
           "images_per_s": round(report.n_images / seconds, 1), "embedding": f"raw pixels {args.size}px"}
    for k in ("accuracy", "accuracy_std", "val", "far", "auc", "eer"):
        print(f"{k:>13}: {out[k]:.4f}")
    print(f"{out['n_pairs']} pairs, {out['n_images']} images, {seconds:.1f} s ({out['images_per_s']} img/s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
