"""People in a photo library as photos arrive: our incremental assignment vs one batch clustering vs an Immich-style rule.

Usage: python benchmarks/people.py --json PATH [--work DIR] [--batches 5] [--skip-speed] [--threshold T] [--sweep T ...]

Photos: every LFW person with at least 4 images, ORL (as PNG), and group photos composed of 2–6 LFW faces of
different people (so same-photo constraints occur), shuffled into 5 arrival batches; casia-webface weights (or --weights) through
the real pipeline (MTCNN, alignment, embedding) via ``Library.add_photos``. The true person of a face is the
photo's (or the tile's) person for the face nearest its centre; any other face found there is its own person.
After each batch: pairwise F1 and NMI over all faces so far (a waiting face counts as its own person) for
  - ours: the library's incremental assignment;
  - batch: average linkage with photo cannot-links over all faces so far, clusters under min_faces as singles;
  - baseline: Immich's rule replayed on the same faces in the same order (k = min_faces = 3 nearest within the
    distance, join the person of the nearest match, else a core face founds a person, else deferred to the end of
    the batch, where it may only join), with our threshold as its distance (T/2 in cosine distance).
User actions: the people found in batch 1 are named (``stability`` = share of their faces with the same person
after every later batch); after batch 2 every face whose true person differs from its person's majority is
rejected (``rejected_reassigned`` counts such faces back with a person they were rejected from at the end).
Speed: ``add_faces_per_s`` end to end (decode + detect + embed + assign + write), and ``assign_ms_per_1000_faces``
adding 1,000 synthetic face-like vectors (512-d, people as noisy unit centres) to libraries of 10k and 100k.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import SHARED, casia_embedder  # noqa: E402

from faceprint.cluster import cluster_metrics  # noqa: E402
from faceprint.cluster.methods import agglomerative, chinese_whispers  # noqa: E402
from faceprint.people import Detected, open_library  # noqa: E402


def make_photos(work: Path, seed: int = 0, group_share: float = 0.12) -> tuple[list[Path], dict[str, list]]:
    """The photo files and, per file, its tiles: [(x0, y0, x1, y1, person)]."""
    rng = np.random.default_rng(seed)
    lfw = SHARED / "lfw" / "images"
    people = {d.name: sorted(d.glob("*.jpg")) for d in sorted(lfw.iterdir()) if len(list(d.glob("*.jpg"))) >= 4}
    out = work / "photos"
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list] = {}
    singles, pool = [], []
    for name, files in people.items():
        for f in files:
            (pool if rng.random() < group_share else singles).append((f, name))
    for f, name in singles:
        truth[str(f.resolve())] = [(0, 0, 250, 250, name)]
    order = rng.permutation(len(pool))
    pool = [pool[i] for i in order]
    g = 0
    while pool:
        size, members, rest = int(rng.integers(2, 7)), [], []
        for f, name in pool:
            (members if len(members) < size and name not in {m[1] for m in members} else rest).append((f, name))
        pool = rest
        if len(members) < 2:
            break
        canvas = Image.new("RGB", (250 * len(members) + 20 * (len(members) - 1), 250), (90, 90, 90))
        tiles = []
        for k, (f, name) in enumerate(members):
            x = k * 270
            canvas.paste(Image.open(f).convert("RGB"), (x, 0))
            tiles.append((x, 0, x + 250, 250, name))
        path = out / f"group-{g:03d}.jpg"
        if not path.exists():
            canvas.save(path, quality=92)
        truth[str(path.resolve())] = tiles
        g += 1
    for d in sorted((SHARED / "orl").iterdir()):
        for f in sorted(d.glob("*.pgm")):
            path = out / f"orl-{d.name}-{f.stem}.png"
            if not path.exists():
                Image.open(f).convert("RGB").save(path)
            truth[str(path.resolve())] = [(0, 0, 92, 112, f"orl-{d.name}")]
    files = sorted(truth)
    files = [Path(files[i]) for i in np.random.default_rng(seed + 1).permutation(len(files))]
    return files, truth


def true_people(lib, truth: dict[str, list]) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """Face id → true person (tile nearest its box centre; a second face in a tile is a stranger)."""
    rows = lib.db.execute("SELECT fp.face_id, ph.path, f.box FROM face_people fp JOIN photos ph ON ph.id = fp.photo_id "
                          "JOIN faces f ON f.id = fp.face_id").fetchall()
    best: dict[tuple[str, int], tuple[float, int]] = {}
    out = {}
    for fid, path, box in rows:
        out[fid] = f"stranger-{fid}"
        b = json.loads(box) if box else [0, 0, 1, 1]
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        for k, (x0, y0, x1, y1, name) in enumerate(truth[path]):
            if x0 <= cx < x1 and y0 <= cy < y1:
                d = (cx - (x0 + x1) / 2) ** 2 + (cy - (y0 + y1) / 2) ** 2
                if (path, k) not in best or d < best[(path, k)][0]:
                    best[(path, k)] = (d, fid)
    for (path, k), (_, fid) in best.items():
        out[fid] = truth[path][k][4]
    return out


def faces_so_far(lib) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(face ids, vectors, photo ids, person ids with −1 for none), in arrival order."""
    rows = lib.db.execute("SELECT f.id, f.vector, fp.photo_id, COALESCE(fp.person_id, -1) FROM faces f JOIN face_people fp "
                          "ON fp.face_id = f.id ORDER BY f.id").fetchall()
    vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)
    return (np.array([r[0] for r in rows]), vecs, np.array([r[2] for r in rows]), np.array([r[3] for r in rows]))


def singles_below(labels: np.ndarray, min_faces: int) -> np.ndarray:
    sizes = np.bincount(labels)
    out = labels.copy()
    small = sizes[labels] < min_faces
    out[small] = labels.max() + 1 + np.arange(small.sum())
    return out


class ImmichRule:
    """Immich's facial-recognition rule replayed face by face (no photo constraints, as there)."""

    def __init__(self, max_sq: float, min_faces: int = 3) -> None:
        self.max_sq, self.min_faces = max_sq, min_faces
        self.vecs: list[np.ndarray] = []
        self.person: list[int] = []
        self.people = 0

    def _one(self, i: int, x: np.ndarray, deferred: bool) -> bool:
        d = ((x[: len(self.person)] - x[i]) ** 2).sum(1)  # faces stored so far, itself included
        order = np.argsort(d, kind="stable")
        matches = [j for j in order[: self.min_faces] if d[j] <= self.max_sq]
        if len(matches) < self.min_faces and not deferred:
            return False
        pid = next((self.person[j] for j in matches if self.person[j] >= 0), -1)
        if pid < 0:
            with_person = [j for j in order if self.person[j] >= 0 and d[j] <= self.max_sq]
            pid = self.person[with_person[0]] if with_person else -1
        if pid < 0 and len(matches) >= self.min_faces:
            pid, self.people = self.people, self.people + 1
        self.person[i] = pid
        return True

    def batch(self, x: np.ndarray, start: int) -> None:
        """Faces ``start:`` of ``x`` arrive (x holds every face so far)."""
        deferred = []
        for i in range(start, len(x)):
            self.person.append(-1)
            if not self._one(i, x, False):
                deferred.append(i)
        for i in deferred:
            self._one(i, x, True)


def labels_of(person: np.ndarray) -> np.ndarray:
    out = person.copy()
    none = out < 0
    out[none] = out.max() + 1 + np.arange(none.sum()) if len(out) else []
    return out


def quality(work: Path, batches: int, threshold: float | None = None,
            weights: str = "casia-webface") -> dict:  # type: ignore[type-arg]
    files, truth = make_photos(work)
    root = work / "library"
    if root.exists():
        import shutil

        shutil.rmtree(root)
    from faceprint.people import PeopleConfig

    from faceprint.models import Embedder

    embedder = casia_embedder() if weights == "casia-webface" else Embedder.from_pretrained(weights)
    lib = open_library(root, {"weights": weights}, embedder=embedder, config=PeopleConfig(threshold=threshold))
    threshold, min_faces = lib.threshold, lib.config.min_faces
    immich = ImmichRule(threshold, min_faces)
    res: dict = {"photos": len(files), "weights": weights, "threshold": threshold, "min_faces": min_faces,  # type: ignore[type-arg]
                 "baseline_max_cosine_distance": threshold / 2, "f1_per_batch": [], "nmi_per_batch": [],
                 "batch_f1_per_batch": [], "batch_nmi_per_batch": [], "baseline_f1_per_batch": [],
                 "baseline_nmi_per_batch": [], "stability_per_batch": [], "people_per_batch": [], "waiting_per_batch": []}
    named: dict[int, int] = {}
    add_s, add_faces = 0.0, 0
    for b, part in enumerate(np.array_split(np.arange(len(files)), batches)):
        t0 = time.perf_counter()
        report = lib.add_photos([files[i] for i in part])
        add_s += time.perf_counter() - t0
        add_faces += report.faces
        ids, vecs, photos, person = faces_so_far(lib)
        immich.batch(vecs, len(immich.person))
        truth_of = true_people(lib, truth)
        t = np.array([truth_of[int(i)] for i in ids])
        ours = cluster_metrics(t, labels_of(person))
        batch = cluster_metrics(t, singles_below(agglomerative(vecs, threshold, groups=photos), min_faces))
        base = cluster_metrics(t, labels_of(np.array(immich.person)))
        for key, m in (("", ours), ("batch_", batch), ("baseline_", base)):
            res[f"{key}f1_per_batch"].append(round(m["f1"], 4))
            res[f"{key}nmi_per_batch"].append(round(m["nmi"], 4))
        res["people_per_batch"].append(len(lib.people(hidden=True)))
        res["waiting_per_batch"].append(int((person < 0).sum()))
        if b == 0:  # the user names every person found so far
            majority = {}
            for p in lib.people():
                names = Counter(t[person == p.id])
                name = names.most_common(1)[0][0]
                k = 2
                while name in majority.values():
                    name, k = f"{names.most_common(1)[0][0]} ({k})", k + 1
                majority[p.id] = name
                lib.name(p.id, name)
            named = {int(f): int(p) for f, p in zip(ids, person) if p in majority}
        else:
            now = dict(zip(ids.tolist(), person.tolist()))
            same = sum(1 for f, p in named.items() if now.get(f, -1) >= 0 and lib.resolve(now[f]) == lib.resolve(p))
            res["stability_per_batch"].append(round(same / max(len(named), 1), 4))
        if b == 1:  # "not this person" for every face that is not its person's majority
            wrong = []
            for p in np.unique(person[person >= 0]):
                top = Counter(t[person == p]).most_common(1)[0][0]
                wrong += [int(f) for f in ids[(person == p) & (t != top)]]
            res["rejected"] = lib.reject(wrong) if wrong else 0
            gone = set(wrong)  # the user took these from their person: stability counts the faces nobody touched
            res["stability_faces"] = len(named) - len(gone & set(named))
            named = {f: p for f, p in named.items() if f not in gone}
        print(f"batch {b + 1}: {report.photos} photos, {report.faces} faces | P/R ours {ours['precision']:.3f}/"
              f"{ours['recall']:.3f} batch {batch['precision']:.3f}/{batch['recall']:.3f} | F1 ours {ours['f1']:.3f} batch {batch['f1']:.3f} "
              f"immich {base['f1']:.3f} | NMI ours {ours['nmi']:.3f} batch {batch['nmi']:.3f} immich {base['nmi']:.3f} | "
              f"people {res['people_per_batch'][-1]}, waiting {res['waiting_per_batch'][-1]}", flush=True)
    lib.retry_waiting()
    back = 0
    for face, refused in lib.db.execute("SELECT face_id, person_id FROM rejections").fetchall():
        now = lib.db.execute("SELECT person_id FROM face_people WHERE face_id = ?", (face,)).fetchone()
        back += int(now is not None and now[0] is not None and lib.resolve(now[0]) == lib.resolve(refused))
    res["rejected_reassigned"] = back
    res["same_photo_violations"] = int(lib.db.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM face_people WHERE person_id IS NOT NULL GROUP BY photo_id, person_id "
        "HAVING COUNT(*) > 1)").fetchone()[0])
    res["stability"] = min(res["stability_per_batch"]) if res["stability_per_batch"] else None
    ids, vecs, photos, person = faces_so_far(lib)
    truth_of = true_people(lib, truth)
    t = np.array([truth_of[int(i)] for i in ids])
    res["faces"], res["true_people"] = int(len(ids)), int(len(set(t)))
    known = np.array([not n.startswith("stranger-") for n in t])  # the threshold's error rates over true people's pairs
    kv, kt = vecs[known], t[known]
    a, b = np.triu_indices(len(kv), 1)
    d = np.concatenate([((kv[a[i : i + 50_000]] - kv[b[i : i + 50_000]]) ** 2).sum(1) for i in range(0, len(a), 50_000)])
    same = kt[a] == kt[b]
    res["threshold_far"] = float((d[~same] < threshold).mean())
    res["threshold_tar"] = round(float((d[same] < threshold).mean()), 4)
    res["final_batch_chinese_whispers_f1"] = round(cluster_metrics(t, singles_below(chinese_whispers(vecs, threshold), min_faces))["f1"], 4)
    res["add_faces_per_s"] = round(add_faces / add_s, 2)
    lib.close()
    return res


def speed(work: Path, sizes: list[int], dim: int = 512, seed: int = 0) -> dict:  # type: ignore[type-arg]
    """ms to add (and assign) 1,000 synthetic faces (1,000 one-face photos) to a library of each size."""
    from faceprint.backbones import create_backbone
    from faceprint.models import Embedder

    rng = np.random.default_rng(seed)
    emb = Embedder(create_backbone("small_cnn", embedding_dim=dim), 32, "synthetic", "torch")
    n_people = max(sizes) // 10
    centres = rng.normal(size=(n_people, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def photos(n: int, start: int) -> list[Detected]:
        who = rng.integers(0, n_people, n)
        v = centres[who] + rng.normal(scale=0.028, size=(n, dim)).astype(np.float32)  # same person: d² ≈ 0.8
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return [Detected(f"s{start + i}", f"/synthetic/{start + i}.jpg", 1, 1, 1, None, v[i : i + 1], [[0, 0, 1, 1]], [None])
                for i in range(n)]

    out: dict = {}  # type: ignore[type-arg]
    root = work / "speed-library"
    if root.exists():
        import shutil

        shutil.rmtree(root)
    lib = open_library(root, {"weights": "synthetic"}, embedder=emb, detect=False)
    have = 0
    for size in sorted(sizes):
        while have < size:
            n = min(5000, size - have)
            lib.add_detected(photos(n, have))
            have += n
        lib.store.refresh()
        t0 = time.perf_counter()
        lib.add_detected(photos(1000, have))
        out[f"assign_ms_per_1000_faces_at_{size // 1000}k"] = round(1000 * (time.perf_counter() - t0), 1)
        out.setdefault("assign_ms_per_1000_faces", {})[f"{size // 1000}k"] = out[f"assign_ms_per_1000_faces_at_{size // 1000}k"]
        have += 1000
        print(f"{size} faces: {out[f'assign_ms_per_1000_faces_at_{size // 1000}k']} ms per 1,000 added", flush=True)
    lib.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-people")
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--weights", default="casia-webface", help="the library's model (its join threshold by default)")
    ap.add_argument("--threshold", type=float, default=None, help="join/found threshold (default: the library's)")
    ap.add_argument("--sweep", type=float, nargs="*", default=[0.75, 0.8, 0.9, 0.95],
                    help="other thresholds run on the same arrivals (final-batch figures only)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    args.work.mkdir(parents=True, exist_ok=True)
    res = quality(args.work, args.batches, args.threshold, args.weights)
    sweep = {str(res["threshold"]): res}
    for t in args.sweep:  # the same arrivals at other thresholds (final-batch figures)
        sweep[str(t)] = quality(args.work / f"sweep-{t}", args.batches, t, args.weights)
    res["threshold_sweep_final_batch"] = {
        k: {"f1": r["f1_per_batch"][-1], "batch_f1": r["batch_f1_per_batch"][-1], "baseline_f1": r["baseline_f1_per_batch"][-1],
            "nmi": r["nmi_per_batch"][-1], "waiting": r["waiting_per_batch"][-1], "far": r["threshold_far"]}
        for k, r in sorted(sweep.items(), key=lambda kv: float(kv[0]))}
    if not args.skip_speed:
        res.update(speed(args.work, args.sizes))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
