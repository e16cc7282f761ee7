"""Inception-ResNet-v1 inference speed at 160×160, batch 32: torch eager, channels_last, torch.compile, onnxruntime.

Usage: python benchmarks/embed.py --json PATH [--threads 2] [--repeats 5] [--no-compile]
Each backend embeds the same standardized batch; img/s is batch / median batch time after warm-up, and
every backend's output is checked against eager (max abs difference). ``speedup`` = best / eager.
JSON: images_per_s {backend: img/s}, max_abs_diff {backend}, compile_s (first torch.compile call), best, speedup.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_ms  # noqa: E402

from faceprint.backbones import create_backbone  # noqa: E402
from faceprint.models import Embedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (its first call takes minutes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_backbone("inception_resnet_v1", embedding_dim=512).eval()
    x = torch.randn(args.batch, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    fns = {name: Embedder(model, 160, backend=name) for name in ("torch", "channels_last", "onnx")}
    compile_s = None
    if not args.no_compile:
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        with torch.inference_mode():
            compiled(x)
        compile_s = time.perf_counter() - t0

        def run_compiled(batch: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return compiled(batch)

        fns["torch.compile"] = run_compiled  # type: ignore[assignment]
    with torch.inference_mode():
        ref = model(x)
    speed, diff = {}, {}
    for name, fn in fns.items():
        ms = median_ms(lambda fn=fn: fn(x), repeats=args.repeats, budget_s=30)
        speed[name] = round(args.batch / (ms / 1000), 2)
        diff[name] = float((fn(x) - ref).abs().max())
        print(f"{name:14s} {speed[name]:7.2f} img/s   max |Δ| vs eager {diff[name]:.1e}", flush=True)
    best = max(speed, key=speed.get)
    result = {
        "model": "inception_resnet_v1", "input": 160, "batch": args.batch, "threads": args.threads,
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "images_per_s": speed, "max_abs_diff": diff, "compile_s": round(compile_s, 1) if compile_s else None,
        "best": best, "speedup": round(speed[best] / speed["torch"], 2),
    }
    print(f"best {best}: {result['speedup']}x eager")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
