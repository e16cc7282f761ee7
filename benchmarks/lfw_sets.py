"""Helpers for benchmarks/lfw.py: MTCNN detections kept on disk (one detection pass serves every model) and a pose
set drawn from the same images (each identity's most frontal face against its most turned ones)."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from faceprint.align import MTCNN
from faceprint.align.detect import Detections, choose_face


class CachedMTCNN(MTCNN):
    """MTCNN whose detections are remembered by the image's pixels and saved to ``path`` (``save()``): the second
    model of a run, and every later run, cuts its faces from the same boxes and landmarks without detecting again."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.known: dict[str, Detections] = pickle.loads(path.read_bytes()) if path.is_file() else {}
        self.misses = 0

    @staticmethod
    def key(image: Image.Image) -> str:
        return hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()

    def detect(self, images):  # type: ignore[no-untyped-def, override]
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        keys = [self.key(im) for im in batch]
        todo = [i for i, k in enumerate(keys) if k not in self.known]
        if todo:
            self.misses += len(todo)
            for i, det in zip(todo, super().detect([batch[i] for i in todo])):
                self.known[keys[i]] = det
        return [self.known[k] for k in keys]

    def save(self) -> None:
        if self.misses:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(self.known))
            tmp.replace(self.path)


def yaw_ratio(landmarks: np.ndarray) -> float:
    """How far the nose sits from the eyes' midpoint, in eye distances (0 frontal; about ±0.5 and beyond when the head
    is turned far enough that one eye nears the nose line). Landmarks: left eye, right eye, nose, mouth corners."""
    le, re, nose = landmarks[0], landmarks[1], landmarks[2]
    return float((nose[0] - (le[0] + re[0]) / 2) / max(np.linalg.norm(re - le), 1e-6))


def face_yaws(mtcnn: CachedMTCNN, images: Sequence[Image.Image]) -> list[float | None]:
    """|yaw ratio| of the face each image's embedding used (the one nearest the centre), None without a face."""
    out: list[float | None] = []
    for image, det in zip(images, mtcnn.detect(list(images))):
        k = choose_face(det, image.size, "center")
        out.append(None if k is None else abs(yaw_ratio(np.asarray(det.landmarks[k], np.float64))))
    return out


def pose_pairs(paths: Sequence[Path], yaws: Sequence[float | None], turned: float = 0.25, frontal: float = 0.08,
               n_folds: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:  # type: ignore[type-arg]
    """Frontal-versus-turned pairs: every turned face (|yaw| ≥ ``turned``) against its identity's most frontal face
    (|yaw| ≤ ``frontal``) as a same pair, and against another identity's most frontal face as a different pair.
    Identities are split into ``n_folds`` folds and the pairs are ordered by fold (the protocol's contiguous folds
    follow them closely; an identity can straddle two where fold sizes differ).
    Returns (rows a, rows b, issame, facts)."""
    by_id: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        if yaws[i] is not None:
            by_id.setdefault(Path(p).parent.name, []).append(i)
    rng = np.random.default_rng(seed)
    names = sorted(by_id)
    fold_of = dict(zip(names, rng.permutation(len(names)) % n_folds))
    best_frontal = {n: min(rows, key=lambda r: yaws[r]) for n, rows in by_id.items()}  # type: ignore[arg-type, return-value]
    best_frontal = {n: r for n, r in best_frontal.items() if yaws[r] <= frontal}  # type: ignore[operator]
    folds: list[list[tuple[int, int, bool]]] = [[] for _ in range(n_folds)]
    for n in names:
        if n not in best_frontal:
            continue
        f = fold_of[n]
        others = [m for m in names if m != n and m in best_frontal and fold_of[m] == f]
        for r in by_id[n]:
            if yaws[r] >= turned and others:  # type: ignore[operator]
                folds[f].append((best_frontal[n], r, True))
                folds[f].append((best_frontal[others[int(rng.integers(len(others)))]], r, False))
    # every pair, ordered by identity fold: the protocol's contiguous folds then follow these closely (an identity
    # can straddle two of them where fold sizes differ)
    rows = [pair for f in folds for pair in f]
    if not rows:
        raise ValueError(f"no turned faces (|yaw| >= {turned}) with a frontal face of the same identity in a fold")
    a, b, same = (np.array(x) for x in zip(*rows))
    facts = {"n_pairs": len(rows), "turned_min_yaw": turned, "frontal_max_yaw": frontal,
             "mean_turned_yaw": round(float(np.mean([yaws[r] for r in b])), 3)}
    return a, b, same.astype(bool), facts
