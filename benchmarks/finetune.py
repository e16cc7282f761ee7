"""Fine-tune imported CASIA-WebFace FaceNet weights on ORL (split by identity): held-out verification before and after.

Usage: python benchmarks/finetune.py --json PATH [--steps 60] [--freeze all_but_last stem] [--work DIR]
ORL is aligned with our MTCNN; 20 identities train, the other 20 are held out (seeded). Each run fine-tunes
with triplet loss (--miner, default semi-hard, --margin 0.2; Adam 1e-5 → cosine), batch-norm statistics fixed, and the held-out
identities are evaluated with seeded pairs (10 folds) plus leave-one-out identification.
JSON: before {metrics}, runs [{freeze, steps, seconds, s_per_step, after {metrics}}].
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import aligned_orl, casia_embedder, default_work, identity_subset  # noqa: E402

from faceprint.config import Config, apply_overrides  # noqa: E402
from faceprint.data.folder import scan_identity_folder  # noqa: E402
from faceprint.evaluation import evaluate_folder  # noqa: E402
from faceprint.models import Embedder  # noqa: E402
from faceprint.models import PretrainedInfo, save_pretrained  # noqa: E402
from faceprint.training import Trainer  # noqa: E402

KEYS = ("accuracy", "accuracy_std", "val", "far", "auc", "eer", "rank1", "map_at_r")


def heldout(embedder: Embedder, folder) -> dict:  # type: ignore[no-untyped-def]
    s = evaluate_folder(embedder, folder, 160, pairs_per_fold=60, seed=0).summary()
    return {k: round(float(s[k]), 4) for k in KEYS if s.get(k) is not None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--freeze", nargs="+", default=["all_but_last", "stem"])
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--work", type=Path, default=default_work())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--miner", default="semihard")
    ap.add_argument("--margin", type=float, default=0.2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    import os

    os.environ["FACEPRINT_HOME"] = str(args.work / "home")  # the benchmark's own weights cache
    orl = aligned_orl(args.work)
    names = sorted(p.name for p in orl.iterdir() if p.is_dir())
    order = np.random.default_rng(args.seed).permutation(len(names))
    train_ids, test_ids = [names[i] for i in order[:20]], [names[i] for i in order[20:]]
    train_dir = identity_subset(orl, train_ids, args.work / "orl-train")
    test = scan_identity_folder(identity_subset(orl, test_ids, args.work / "orl-test"))
    base = casia_embedder(backend="torch")
    save_pretrained(base.model.state_dict(), PretrainedInfo(name="casia-webface", source="20180408-102900.pb"))
    before = heldout(base, test)
    print(f"before: {before}", flush=True)
    runs = []
    for freeze in args.freeze:
        out = args.work / f"run-{freeze}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        cfg = apply_overrides(Config(), [
            f"data.root={train_dir}", "data.image_size=160", "data.val_fraction=0", "data.test_fraction=0",
            "data.augment=false", "model.backbone=inception_resnet_v1", "model.embedding_dim=512",
            "model.init=casia-webface", f"model.freeze={freeze}", f"loss.miner={args.miner}", f"loss.margin={args.margin}",
            "loss.semihard_fallback=hardest", f"optim.lr={args.lr}", "optim.optimizer=adam", "train.p=8", "train.k=4",
            f"train.steps={args.steps}", "train.eval_every=0", f"train.checkpoint_every={args.steps}",
            f"train.out={out}", f"train.seed={args.seed}", "train.threads=2",
        ])
        t0 = time.perf_counter()
        trainer = Trainer(cfg, progress=False)
        trainer.run()
        seconds = time.perf_counter() - t0
        after = heldout(Embedder(trainer.model, 160), test)
        losses = [round(v, 5) for _, v in trainer.loss_history]
        runs.append({"freeze": freeze, "miner": args.miner, "margin": args.margin, "loss_history": losses, "steps": args.steps, "seconds": round(seconds, 1),
                     "s_per_step": round(seconds / args.steps, 2), "after": after})
        print(f"{freeze}: after {after} ({seconds:.0f} s)", flush=True)
    result = {"train_identities": len(train_ids), "heldout_identities": len(test_ids), "heldout_images": len(test),
              "lr": args.lr, "before": before, "runs": runs}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
