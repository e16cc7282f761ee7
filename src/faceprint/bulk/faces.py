"""Every face of a folder of photos as shards (``FacesJob``): what ``index build`` and ``library add`` ingest when they
run on the bulk runner (``--workers N`` processes or ``--engine ray``).

Each shard's output is one ``.npz`` beside its record: per photo its relative path, content sha256, size in bytes,
width, height and EXIF date; per face its photo, vector, box, MTCNN score, landmarks and thumbnail (JPEG bytes,
concatenated with offsets). Photos are read once (bytes → hash → decode in threads), detected and embedded in
batches; a bad file becomes a problem line. The ingesting command then adds the shards in manifest order, so the
result is the one-process command's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.bulk.shards import Shard
from faceprint.io import atomic_path

__all__ = ["FacesJob", "PhotoFaces", "ShardFaces", "faces_of_photos", "usable"]


@dataclass
class ShardFaces:
    """One shard's photos and faces, read back (face arrays are row-aligned; ``photo`` indexes the photo arrays)."""

    paths: list[str]
    hashes: list[str]
    sizes: list[int]
    widths: list[int]
    heights: list[int]
    dates: list[str | None]
    photo: np.ndarray
    vectors: np.ndarray
    boxes: list[list[float] | None]
    probs: list[float | None]
    landmarks: list[Any]
    thumbs: list[bytes]


@dataclass(frozen=True)
class FacesJob:
    """Detect → align → embed every photo under ``src`` (all faces of a loose photo; with ``labeled``, the largest face
    of a photo inside an identity folder, as ``index build`` takes them)."""

    src: str
    dst: str  # where the shard records and arrays live (the index or library being built)
    model: dict[str, Any]  # an Embedder spec
    detect: bool | None = None
    margin: float | None = None
    labeled: bool = False
    batch_size: int = 16
    model_id: str = ""  # the model's fingerprint: in the recipe hash
    thumb_size: int = 96  # side of the JPEG thumbnails (cluster's contact sheets use 80)

    def setup(self) -> Any:
        from faceprint.models import Embedder, WeightsError, face_embedder

        emb = Embedder.from_spec(self.model)
        if self.model_id and emb.fingerprint() != self.model_id:
            raise WeightsError(f"{self.model} here is not the model the job was started with (fingerprint "
                               f"{emb.fingerprint()[:12]}… vs {self.model_id[:12]}…)")
        return face_embedder(emb, detect=self.detect, margin=self.margin)

    def run(self, faces: Any, shard: Shard, pool: ThreadPoolExecutor) -> dict[str, Any]:
        from faceprint.bulk.jobs import _remove_leftovers
        from faceprint.models.pipeline import thumbnail
        from faceprint.people.library import photo_date

        src = Path(self.src)
        problems: list[dict[str, str]] = []
        photos: list[tuple[str, str, int, int, int, str | None]] = []
        owner, vecs, boxes, probs, marks, thumbs = [], [], [], [], [], []
        for batch in self._decoded(shard, pool, problems):
            flags = [not (self.labeled and "/" in rel) for rel, *_ in batch]
            crops = faces.crops_many([img for *_, img in batch], flags) if batch else []
            flat = [c for cs in crops for c in cs]
            vectors = faces.embed_crops(flat)
            at = 0
            for (rel, digest, data, img), cs in zip(batch, crops):
                size = img.info.get("original_size", img.size)
                photos.append((rel, digest, len(data), size[0], size[1], photo_date(data)))
                if not cs:
                    problems.append({"path": str(src / rel), "issue": "no_face", "detail": "no face detected"})
                for c in cs:
                    owner.append(len(photos) - 1)
                    boxes.append(c.box if c.box is not None else [np.nan] * 4)
                    probs.append(np.nan if c.prob is None else c.prob)
                    marks.append(np.asarray(c.landmarks, np.float32) if c.landmarks is not None else np.full((5, 2), np.nan))
                    thumbs.append(thumbnail(c.image, self.thumb_size))
                vecs.append(vectors[at : at + len(cs)])
                at += len(cs)
        dim = faces.embedder.dim
        out = self.part(shard)
        _remove_leftovers([out])
        blob = b"".join(thumbs)
        with atomic_path(out, durable=False) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, paths=np.array([p[0] for p in photos], dtype=str), hashes=np.array([p[1] for p in photos], dtype=str),
                     sizes=np.array([p[2] for p in photos], np.int64), widths=np.array([p[3] for p in photos], np.int64),
                     heights=np.array([p[4] for p in photos], np.int64), dates=np.array([p[5] or "" for p in photos], dtype=str),
                     photo=np.array(owner, np.int64), vectors=np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32),
                     boxes=np.array(boxes, np.float64).reshape(-1, 4), probs=np.array(probs, np.float64),
                     landmarks=np.array(marks, np.float32).reshape(-1, 5, 2),
                     thumbs=np.frombuffer(blob, np.uint8), offsets=np.cumsum([0] + [len(t) for t in thumbs]))
        return {"written": len(owner), "outputs": [str(out)], "problems": problems}

    def _decoded(self, shard: Shard, pool: ThreadPoolExecutor,
                 problems: list[dict[str, str]]) -> Iterator[list[tuple[str, str, bytes, Any]]]:
        """Batches of (relative path, sha256, bytes, RGB image), read and decoded by ``pool`` one batch ahead."""
        from faceprint.data.images import ImageLoadError, decode_bytes

        src = Path(self.src)

        def load(rel: str) -> tuple[str, str, bytes, Any] | None:
            try:
                data = (src / rel).read_bytes()
                return rel, hashlib.sha256(data).hexdigest(), data, decode_bytes(data, str(src / rel), formats=None)  # as load_rgb
            except (ImageLoadError, OSError) as exc:
                problems.append({"path": str(src / rel), "issue": "unreadable", "detail": str(exc)})
                return None

        chunks = [shard.files[i : i + self.batch_size] for i in range(0, len(shard.files), self.batch_size)]
        ahead = [[pool.submit(load, f) for f in c] for c in chunks[:1]]
        for k in range(len(chunks)):
            futures = ahead.pop(0)
            if k + 1 < len(chunks):
                ahead.append([pool.submit(load, f) for f in chunks[k + 1]])
            yield [r for r in (f.result() for f in futures) if r is not None]

    def part(self, shard: Shard) -> Path:
        from faceprint.bulk.runner import state_dir

        return state_dir(self) / f"{shard.name}.npz"

    def read(self, shard: Shard) -> ShardFaces:
        """A finished shard's photos and faces."""
        with np.load(self.part(shard)) as z:
            blob, offsets = z["thumbs"].tobytes(), z["offsets"]
            boxes = [None if np.isnan(b).any() else [float(v) for v in b] for b in z["boxes"]]
            marks = [None if np.isnan(m).any() else np.round(m.astype(float), 1).tolist() for m in z["landmarks"]]
            return ShardFaces([str(p) for p in z["paths"]], [str(h) for h in z["hashes"]], z["sizes"].tolist(),
                              z["widths"].tolist(), z["heights"].tolist(), [str(d) or None for d in z["dates"]],
                              z["photo"], z["vectors"].astype(np.float32), boxes,
                              [None if np.isnan(p) else float(p) for p in z["probs"]], marks,
                              [blob[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)])


@dataclass
class PhotoFaces:
    """One photo's facts and faces from a ``FacesJob`` (face lists are row-aligned)."""

    hash: str
    size: int
    width: int
    height: int
    date: str | None
    vectors: np.ndarray
    boxes: list[list[float] | None]
    probs: list[float | None]
    landmarks: list[Any]
    thumbs: list[bytes]


def faces_of_photos(paths: list[Path], model: dict[str, Any], faces: Any, engine: str, workers: int, shard_size: int,
                    ray_address: str | None, state: Path, root: Path | None = None, labeled: bool = False,
                    thumb_size: int = 96, progress: Any = None) -> dict[str, PhotoFaces | list[dict[str, str]]]:
    """Every face of ``paths`` (files, in the caller's order) from a ``FacesJob`` on the bulk runner: ``str(path)`` →
    its ``PhotoFaces``, or its problems (unreadable). The shard state lives under ``state`` while the job runs (a rerun
    after a kill resumes it) and is removed once everything is read back, so no copy of the faces stays behind and
    a photo edited later is read again. ``root``: the folder identities are taken under (``labeled``)."""
    import os
    import shutil

    from faceprint.bulk.runner import run_job, state_dir

    paths = [Path(p) for p in paths]
    base = root or Path(os.path.commonpath([str(p.absolute().parent) for p in paths]))
    rels = [p.absolute().relative_to(base.absolute()).as_posix() for p in paths]
    job = FacesJob(str(base), str(state), model, faces.detect, faces.margin, labeled, model_id=faces.embedder.fingerprint(),
                   thumb_size=thumb_size)
    bulk = run_job(job, engine, workers, shard_size, progress, ray_address, inputs=rels)
    src = Path(job.src).resolve()
    by_rel: dict[str, PhotoFaces | list[dict[str, str]]] = {}
    for problem in bulk.problems:
        if problem["issue"] == "unreadable":
            rel = Path(problem["path"]).relative_to(src).as_posix()
            by_rel.setdefault(rel, []).append(problem)  # type: ignore[union-attr]
    for shard in bulk.shard_list:
        got = job.read(shard)
        for k, rel in enumerate(got.paths):
            rows = np.flatnonzero(got.photo == k)
            by_rel[rel] = PhotoFaces(got.hashes[k], got.sizes[k], got.widths[k], got.heights[k], got.dates[k],
                                     got.vectors[rows], [got.boxes[r] for r in rows], [got.probs[r] for r in rows],
                                     [got.landmarks[r] for r in rows], [got.thumbs[r] for r in rows])
    shutil.rmtree(state_dir(job), ignore_errors=True)
    for folder in (state_dir(job).parent, Path(job.dst)):  # and the folders it made, when nothing else is in them
        try:
            folder.rmdir()
        except OSError:
            pass
    out: dict[str, PhotoFaces | list[dict[str, str]]] = {}
    for p, rel in zip(paths, rels):
        got = by_rel.get(rel, [])
        if isinstance(got, list):  # problems named by the path as the caller gave it
            got = [{**q, "path": str(p), "detail": q["detail"].replace(str(src / rel), str(p))} for q in got]
        out[str(p)] = got
    return out


def usable(found: dict[str, PhotoFaces | list[dict[str, str]]], path: Path, problems: list[dict[str, str]]) -> PhotoFaces | None:
    """``path``'s faces from ``faces_of_photos``, or None once its problems (unreadable, or no face) are in ``problems``."""
    got = found[str(path)]
    if isinstance(got, list):
        problems += got
        return None
    if not len(got.vectors):
        problems.append({"path": str(path), "issue": "no_face", "detail": "no face detected"})
        return None
    return got
