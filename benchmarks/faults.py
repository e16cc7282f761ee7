"""Fault injection and hostile input, end to end: kills, a bad-input corpus, fuzzed and concurrent requests.

Usage: python benchmarks/faults.py --json PATH [--kill-trials 10] [--fuzz 500] [--soak-s 0]
- kill_trials / resumed_identical: `faceprint train` is SIGKILLed at a random moment (after its first
  checkpoint; checkpoints every step, so kills land mid-step and mid-write), resumed to the end, and compared
  bitwise with an uninterrupted run.
- corpus_files / clear_errors / tracebacks: every unreadable file of tests/corpus.py, through embed, index build,
  cluster, classify fit, align, eval and train; a "clear error" is the file named in a skip line or report.
- lost_items: readable corpus images that `faceprint embed` did not embed + enrolments missing after 40
  concurrent enroll/search requests + faces lost by an index add killed mid-way.
- fuzz_requests / server_errors_5xx: random bytes, truncated headers, wrong types at /search, /enroll, /verify.
- the service (benchmarks/service_faults.py): csrf_attempts / csrf_refused; two_writers_added / _lost / _duplicated
  and server_saw_all_s (two `index add` processes of 500 images each beside a searching server); swap_* (`index
  build --force` under a searching server); burst_peak_rss_mb and burst_5xx_other_than_503 (200 concurrent 10 MB
  uploads); soak_rss_mb (--soak-s seconds, default 600, of 200-request bursts; RSS each minute).
--only-service runs just the service part and merges it into the --json file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from tests.corpus import bad_files, write_corpus  # noqa: E402
from tests.faults import faceprint, kill_and_resume, same_weights, train_args  # noqa: E402

from faceprint.backbones import create_backbone  # noqa: E402
from faceprint.data.synth import write_synthetic_dataset  # noqa: E402
from faceprint.models import PretrainedInfo, save_pretrained  # noqa: E402
from faceprint.search import FaceStore, build_index  # noqa: E402
from faceprint.training.checkpoint import load_checkpoint  # noqa: E402


def kills(work: Path, trials: int) -> tuple[int, int]:
    data = write_synthetic_dataset(work / "faces", identities=24, images_per_identity=6, size=32, seed=0)
    ref = faceprint(*train_args(data, work / "ref", 12))
    ref.communicate(timeout=600)
    reference = load_checkpoint(work / "ref")["model"]
    identical = done = attempt = 0
    while done < trials and attempt < 3 * trials:  # a run that finished before the kill does not count as a trial
        killed, weights = kill_and_resume(data, work / f"kill{attempt}", 12, seed=attempt)
        attempt += 1
        if killed:
            done += 1
            identical += same_weights(weights, reference)
        print(f"attempt {attempt}: killed={killed} identical={same_weights(weights, reference)}", flush=True)
    return done, identical


def corpus(work: Path) -> tuple[int, int, int, int]:
    root = work / "corpus"
    write_corpus(root)
    bad = list(bad_files())
    runs = {
        "embed": ["embed", str(root), "--weights", "tiny", "--out", str(work / "e")],
        "index": ["index", "build", str(root), "--out", str(work / "ix"), "--weights", "tiny", "--no-detect", "--force"],
        "cluster": ["cluster", str(root), "--out", str(work / "cl"), "--weights", "tiny", "--no-detect"],
        "classify": ["classify", "fit", str(root), "--weights", "tiny", "--out", str(work / "c.safetensors")],
        "align": ["align", str(root), str(work / "al")],
        "eval": ["eval", "--weights", "tiny", "--data", str(root), "--pairs-per-fold", "4"],
        "train": ["train", str(root), "--out", str(work / "tr"), "--steps", "2", "--p", "2", "--k", "2",
                  "--image-size", "32", "--embedding-dim", "8", "--set", "train.eval_every=0",
                  "--set", "data.val_fraction=0", "--set", "data.test_fraction=0"],
    }
    clear = tracebacks = 0
    for name, args in runs.items():
        proc = faceprint(*args)
        out, _ = proc.communicate(timeout=600)
        reports = " ".join(p.read_text(errors="replace") for p in work.rglob("*.json") if p.stat().st_size < 10_000_000)
        tracebacks += "Traceback" in out
        found = sum(f in out or f in reports for f in bad)
        clear += found
        print(f"corpus {name}: exit {proc.returncode}, {found}/{len(bad)} bad files named", flush=True)
    embedded = np.load(work / "e.npy").shape[0]
    lost = 20 - embedded  # 9 good + 11 awkward readable images
    return len(bad) * len(runs), clear, tracebacks, max(lost, 0)


def server(work: Path, n_fuzz: int) -> tuple[int, int, int]:
    from fastapi.testclient import TestClient
    from PIL import Image

    from faceprint.serve import ServeConfig, create_app

    data = write_synthetic_dataset(work / "gallery", identities=6, images_per_identity=4, size=32, seed=1)
    build_index(data, work / "srv", {"weights": "tiny"}, detect=False)[0].close()
    client = TestClient(create_app(work / "srv", ServeConfig(max_upload_bytes=8192)), raise_server_exceptions=False)
    rng = random.Random(0)
    heads = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"BM", b"<svg"]
    errors = 0
    for i in range(n_fuzz):
        body = rng.choice(heads) + rng.randbytes(rng.choice([0, 10, 500, 5000, 9000]))
        ctype = rng.choice(["image/jpeg", "image/png", "text/html", ""])
        endpoint = rng.choice(["/search", "/enroll", "/verify"])
        if endpoint == "/verify":
            r = client.post(endpoint, files={"file_a": ("a", body, ctype), "file_b": ("b", body, ctype)})
        else:
            r = client.post(endpoint, files={"file": ("x.jpg", body, ctype)}, data={"k": rng.choice(["3", "-1", "x"]), "name": "f"})
        errors += r.status_code >= 500
    before = client.get("/healthz").json()["faces"]

    def jpeg(seed: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(buf, format="JPEG")
        return buf.getvalue()

    def call(i: int) -> int:
        if i % 2:
            return client.post("/enroll", files={"file": ("e.jpg", jpeg(1000 + i), "image/jpeg")}, data={"name": f"p{i}"}).status_code
        return client.post("/search", files={"file": ("q.jpg", jpeg(i), "image/jpeg")}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(call, range(40)))
    errors += sum(c >= 500 for c in codes)
    lost = before + 20 - client.get("/healthz").json()["faces"]
    return n_fuzz + 40, errors, lost


def killed_add(work: Path) -> int:
    """Faces lost or half-added when `index add` is killed: the index must equal its state before the add."""
    data = write_synthetic_dataset(work / "addsrc", identities=8, images_per_identity=4, size=32, seed=2)
    build_index(data, work / "addix", {"weights": "tiny"}, detect=False)[0].close()
    before = FaceStore(work / "addix").info()["faces"]
    big = work / "big"
    for i in range(600):
        (big / f"p{i}").mkdir(parents=True, exist_ok=True)
        for j, src in enumerate(sorted(data.rglob("*.png"))[:20]):
            dst = big / f"p{i}" / f"{j}.png"
            if not dst.exists():
                dst.symlink_to(src)
    proc = faceprint("index", "add", str(work / "addix"), str(big))
    time.sleep(4)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = FaceStore(work / "addix")
    ids, vecs, _ = store.all_vectors()
    consistent = store.vectors.count() == len(ids) == before  # the benchmark checks the derived index
    return 0 if consistent else abs(len(ids) - before) or 1


def service(work: Path, soak_s: float) -> dict:
    """The service figures (benchmarks/service_faults.py) on synthetic galleries and a real LFW photo."""
    import service_faults as sf

    shared = ROOT.parent / "shared" / "data"
    photo = next(iter(sorted((shared / "lfw" / "images").rglob("*.jpg"))), None)
    base = write_synthetic_dataset(work / "svc-gallery", identities=10, images_per_identity=4, size=32, seed=5)
    index_dir = work / "svc"
    build_index(base, index_dir, {"weights": "tiny"}, detect=False)[0].close()
    probe = sorted(base.rglob("*.png"))[0]
    writers = tuple(write_synthetic_dataset(work / f"writer{i}", identities=50, images_per_identity=10, size=32,
                                            seed=20 + i) for i in range(2))
    result = {**sf.csrf(index_dir, probe), **sf.two_writers(index_dir, writers, probe)}  # type: ignore[arg-type]
    other = write_synthetic_dataset(work / "svc-other", identities=12, images_per_identity=5, size=32, seed=6)
    result.update(sf.swap(index_dir, other, probe))
    if photo is not None:
        result.update(sf.burst(index_dir, photo))
    if soak_s:
        result.update(sf.soak(index_dir, probe.read_bytes(), soak_s))
    result.update(sf.private_library(work, (shared / "lfw" / "images") if photo is not None else None))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--kill-trials", type=int, default=10)
    ap.add_argument("--fuzz", type=int, default=500)
    ap.add_argument("--soak-s", type=float, default=600)
    ap.add_argument("--only-service", action="store_true", help="run only the service figures; merge them into --json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="faceprint-faults-"))
    os.environ["FACEPRINT_HOME"] = str(work / "home")
    torch.manual_seed(0)
    save_pretrained(create_backbone("small_cnn", embedding_dim=16).state_dict(),
                    PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    if args.only_service:
        old = json.loads(args.json.read_text()) if args.json.is_file() else {}
        result = {**old, **service(work, args.soak_s)}
        print(json.dumps(result, indent=2))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        return
    trials, identical = kills(work, args.kill_trials)
    files, clear, tracebacks, lost_corpus = corpus(work)
    requests, errors, lost_enrol = server(work, args.fuzz)
    lost_add = killed_add(work)
    result = {"kill_trials": trials, "resumed_identical": identical, "corpus_files": files, "clear_errors": clear,
              "tracebacks": tracebacks, "lost_items": lost_corpus + lost_enrol + lost_add, "fuzz_requests": requests,
              "server_errors_5xx": errors}
    result.update(service(work, args.soak_s))
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
