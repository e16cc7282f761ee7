"""Every registered backbone at its usual input size: parameters, GFLOPs, inference and training speed.

Usage: python benchmarks/backbones.py --json PATH [--batch 32] [--threads 2] [--names ...]
GFLOPs per image come from torch's FLOP counter (one forward of one image; a multiply-add is 2 FLOPs);
inference is img/s at batch 32 in eval mode; a training step is forward + backward + SGD at batch 32.
JSON: a list of records with name, input, params, gflops, infer_img_s, train_step_s.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from faceprint.backbones import backbone_spec, create_backbone, list_backbones


def measure(name: str, batch: int, repeats: int) -> dict:
    size = backbone_spec(name).input_size
    model = create_backbone(name, embedding_dim=128)
    params = sum(p.numel() for p in model.parameters())
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, size, size))
    gflops = counter.get_total_flops() / 1e9
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        infer = batch * repeats / (time.perf_counter() - t0)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"name": name, "input": size, "params": params, "gflops": round(gflops, 3),
            "infer_img_s": round(infer, 1), "train_step_s": round(sorted(times[1:])[len(times[1:]) // 2], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--names", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    records = []
    print(f"{'backbone':22} {'input':>5} {'params':>12} {'GFLOPs':>8} {'infer img/s':>12} {'train step s':>13}")
    for name in args.names or list_backbones():
        r = measure(name, args.batch, args.repeats)
        records.append(r)
        print(f"{name:22} {r['input']:>5} {r['params']:>12,} {r['gflops']:>8.3f} {r['infer_img_s']:>12.1f} {r['train_step_s']:>13.3f}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
