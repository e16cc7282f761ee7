"""Camera-sized photos: the one decode rule (reduced JPEG decode + detection at DETECT_SIDE) against full-size
detection, on 12-megapixel photos composed of LFW faces.

Usage: python benchmarks/photos.py --json PATH [--photos 200] [--subset 16] [--sides 1024 1440 2048] [--work DIR]

Photos: 4032×3024 JPEGs (quality 90, a phone's 12 MP) on a smooth background, each with 1–8 LFW images (grayscale, 250 px) pasted at
realistic sizes: 70 % with faces of about 135–450 px, 30 % small (about 35–135 px), one per cell of a 4×3 grid.
A face is found when a detection's centre lies in the middle half of its pasted image.

- ``sweep``: on the first ``--subset`` photos, per detection side (and full size): seconds per photo for decode +
  MTCNN, and faces found.
- ``photos_per_s``: `Library.add_photos` end to end (decode, MTCNN, casia-webface embedding, assignment, writes)
  on all photos by the rule, in a fresh process. ``speedup_over_full_size``: on the subset, the rule's rate over the
  old rule's (full-size decode and detection), each in a fresh process with a new library, in the same run.
- ``faces_found_over_full_size``: faces found by the rule / by full size, on the subset.
- ``peak_rss_mb``: the peak resident memory (VmHWM) of the process adding all photos by the rule.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import GRAPH, SHARED  # noqa: E402

W, H = 4032, 3024  # a 12-MP phone photo


def make_photos(out: Path, n: int, seed: int = 0) -> tuple[list[Path], dict[str, list[tuple[int, int, int]]]]:
    """``n`` photos and, per file, its pasted faces as (x, y, size)."""
    rng = np.random.default_rng(seed)
    files = sorted((SHARED / "lfw" / "images").rglob("*.jpg"))
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[tuple[int, int, int]]] = {}
    yy, xx = np.mgrid[0:H:8, 0:W:8]
    paths = []
    for k in range(n):
        path = out / f"photo_{k:04d}.jpg"
        paths.append(path)
        c0, c1 = rng.integers(40, 215, 3), rng.integers(40, 215, 3)
        t = (xx / W * 0.6 + yy / H * 0.4)[..., None]
        small = (c0 * (1 - t) + c1 * t + rng.normal(0, 4, t.shape)).clip(0, 255).astype(np.uint8)
        canvas = Image.fromarray(small).resize((W, H), Image.BILINEAR)
        faces = []
        for cell in rng.choice(12, size=int(rng.integers(1, 9)), replace=False):
            cx, cy = (cell % 4) * 1000, (cell // 4) * 1000
            size = int(rng.integers(80, 300) if rng.random() < 0.3 else rng.integers(300, 1000))
            x, y = cx + int(rng.integers(0, 1000 - size + 1)), cy + int(rng.integers(0, 1000 - size + 1))
            face = Image.open(files[int(rng.integers(len(files)))]).convert("RGB").resize((size, size), Image.BICUBIC)
            canvas.paste(face, (x, y))
            faces.append((x, y, size))
        if not path.exists():
            canvas.save(path, format="JPEG", quality=90)
        truth[str(path)] = faces
    return paths, truth


def found(boxes: list[list[float] | None], faces: list[tuple[int, int, int]]) -> int:
    """Pasted faces with a detection centred in their middle half."""
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes if b is not None]
    return sum(any(x + s / 4 <= cx <= x + 3 * s / 4 and y + s / 4 <= cy <= y + 3 * s / 4 for cx, cy in centres)
               for x, y, s in faces)


def sweep(paths: list[Path], truth: dict, sides: list[int | None]) -> dict[str, dict[str, float]]:
    """Seconds per photo (decode + detection) and faces found, per detection side (None: full size)."""
    from faceprint.data.images import decode_photo
    from faceprint.models import face_embedder

    from faceprint.models import Embedder

    faces = face_embedder(Embedder.from_pretrained("casia-webface"), detect=True)
    out = {}
    for side in sides:
        t0, hits = time.perf_counter(), 0
        for p in paths:
            img = decode_photo(p.read_bytes(), str(p), side)
            hits += found([c.box for c in faces.crops_many([img])[0]], truth[str(p)])
        secs = (time.perf_counter() - t0) / len(paths)
        out[str(side or "full")] = {"s_per_photo": round(secs, 3), "faces_found": hits}
        print(f"side {side or 'full'}: {secs:.2f} s/photo, {hits} faces found", flush=True)
    return out


def child_add(listing: Path, lib: Path, side: str) -> None:
    """In a fresh process: add the listed photos to a new library by the rule (or at full size); print the figures."""
    from faceprint.people import open_library

    paths = [Path(p) for p in listing.read_text().split("\n") if p]
    library = open_library(lib, {"weights": "casia-webface"})  # as `faceprint library add` loads it: from the cache
    library.index.faces.detect_side = None if side == "full" else int(side)
    t0 = time.perf_counter()
    report = library.add_photos(paths)
    secs = time.perf_counter() - t0
    faces = report.faces if hasattr(report, "faces") else None
    library.close()
    peak = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) // 1024
    print(json.dumps({"seconds": secs, "photos": len(paths), "faces": faces, "peak_rss_mb": peak}))


def run_child(paths: list[Path], work: Path, side: str, tag: str) -> dict:
    import shutil

    listing = work / f"list-{tag}.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    lib = work / f"lib-{tag}"
    shutil.rmtree(lib, ignore_errors=True)  # a new library each run: nothing is "already there"
    proc = subprocess.run([sys.executable, __file__, "--child-add", str(listing), "--lib", str(lib), "--side", side],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"library add ({tag}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--subset", type=int, default=16)
    ap.add_argument("--sides", type=int, nargs="*", default=[1024, 1440, 2048])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--sweep-only", action="store_true", help="only the detection-side sweep (on --subset photos)")
    ap.add_argument("--child-add", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--lib", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--side", default="2048", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_add:
        child_add(args.child_add, args.lib, args.side)
        return
    from faceprint.data.images import DETECT_SIDE

    work = args.work or Path(tempfile.mkdtemp(prefix="faceprint-photos-"))
    os.environ["FACEPRINT_HOME"] = str(work / "home")  # casia-webface imported once, as a user's cache holds it
    if not (work / "home" / "weights" / "casia-webface").is_dir():
        from faceprint.models.importers import import_tf_graph

        import_tf_graph(GRAPH, "casia-webface")
    paths, truth = make_photos(work / "photos", args.photos)
    subset = paths[: args.subset]
    result: dict = {"photos": len(paths), "photo_size": [W, H], "faces_pasted": sum(len(v) for v in truth.values()),
                    "subset": len(subset), "subset_faces_pasted": sum(len(truth[str(p)]) for p in subset),
                    "detect_side": DETECT_SIDE}
    result["sweep"] = sweep(subset, truth, [*sorted({*args.sides, DETECT_SIDE}), None])
    if args.sweep_only:
        print(json.dumps(result, indent=2))
        return
    small = run_child(subset, work, str(DETECT_SIDE), "rule-subset")
    full = run_child(subset, work, "full", "full-subset")
    rule = run_child(paths, work, str(DETECT_SIDE), "rule-all")
    result.update(photos_per_s=round(rule["photos"] / rule["seconds"], 3), peak_rss_mb=rule["peak_rss_mb"],
                  faces_added=rule["faces"],
                  subset_photos_per_s=round(small["photos"] / small["seconds"], 3),
                  full_size_photos_per_s=round(full["photos"] / full["seconds"], 3),
                  full_size_peak_rss_mb=full["peak_rss_mb"], subset_faces_added=small["faces"],
                  full_size_faces_added=full["faces"])
    result["speedup_over_full_size"] = round(result["subset_photos_per_s"] / result["full_size_photos_per_s"], 2)
    new, old = result["sweep"][str(DETECT_SIDE)]["faces_found"], result["sweep"]["full"]["faces_found"]
    result["faces_found_over_full_size"] = round(new / old, 3) if old else None
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
