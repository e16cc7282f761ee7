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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.bulk.shards import Shard
from faceprint.io import atomic_path
from faceprint.models.photos import Detected

__all__ = ["FacesJob", "Runner", "RunnerFaces", "drop_state", "faces_of_photos", "usable"]


@dataclass(frozen=True)
class Runner:
    """Where the commands that ingest faces (index build, library add, cluster) detect and embed: ``workers`` local
    processes or a Ray cluster (``engine="ray"``), in shards of ``shard_size`` photos."""

    engine: str = "local"
    workers: int = 1
    shard_size: int = 256
    ray_address: str | None = None

    @property
    def spreads(self) -> bool:
        """Whether it runs anywhere but this one process (else the commands keep their one-process path)."""
        return self.engine != "local" or self.workers > 1


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
        from faceprint.models.photos import detect_photos

        problems: list[dict[str, str]] = []
        photos: list[Detected] = []
        for batch in self._decoded(shard, pool, problems, faces.detect_side):
            flags = [not (self.labeled and "/" in rel) for rel, *_ in batch]
            for got in detect_photos(faces, batch, flags, self.thumb_size):
                if not len(got.vectors):
                    problems.append({"path": str(Path(self.src) / got.path), "issue": "no_face", "detail": "no face detected"})
                photos.append(got)
        out = self.part(shard)
        _remove_leftovers([out])
        with atomic_path(out, durable=False) as tmp, open(tmp, "wb") as fh:
            _save(fh, photos, faces.embedder.dim)
        return {"written": sum(len(p.vectors) for p in photos), "outputs": [str(out)], "problems": problems}

    def _decoded(self, shard: Shard, pool: ThreadPoolExecutor, problems: list[dict[str, str]],
                 side: int | None) -> Iterator[list[tuple[str, bytes, str, Any]]]:
        """Batches of (relative path, bytes, sha256, RGB image), read and decoded by ``pool`` two batches ahead (by the
        one decode rule: reduced to ``side`` for detection)."""
        from faceprint.bulk.jobs import read_ahead
        from faceprint.data.images import decode_photo

        def load(path: Path) -> tuple[bytes, str, Any]:
            data = path.read_bytes()
            return data, hashlib.sha256(data).hexdigest(), decode_photo(data, str(path), side)

        for batch in read_ahead(Path(self.src), shard.files, self.batch_size, pool, problems, load):
            yield [(rel, *got) for rel, got in batch]

    def part(self, shard: Shard) -> Path:
        from faceprint.bulk.shards import state_dir

        return state_dir(self) / f"{shard.name}.npz"

    def read(self, shard: Shard) -> list[Detected]:
        """A finished shard's photos and their faces (each ``path`` relative to ``src``)."""
        with np.load(self.part(shard)) as z:
            return _load(z)


def _save(fh: Any, photos: list[Detected], dim: int) -> None:
    """Photos as flat arrays: per photo its facts, per face its photo's row and its vector, box, score, landmarks and
    thumbnail (JPEG bytes concatenated, with offsets); NaN where a box, score or landmarks is absent."""
    faces = [(k, i) for k, p in enumerate(photos) for i in range(len(p.vectors))]
    thumbs = [photos[k].thumbs[i] or b"" for k, i in faces]
    np.savez(fh, paths=np.array([p.path for p in photos], dtype=str), hashes=np.array([p.hash for p in photos], dtype=str),
             sizes=np.array([p.size for p in photos], np.int64), widths=np.array([p.width for p in photos], np.int64),
             heights=np.array([p.height for p in photos], np.int64),
             dates=np.array([p.taken_at or "" for p in photos], dtype=str), photo=np.array([k for k, _ in faces], np.int64),
             vectors=np.concatenate([p.vectors for p in photos]) if photos else np.zeros((0, dim), np.float32),
             boxes=np.array([photos[k].boxes[i] or [np.nan] * 4 for k, i in faces], np.float64).reshape(-1, 4),
             probs=np.array([np.nan if photos[k].probs[i] is None else photos[k].probs[i] for k, i in faces], np.float64),
             landmarks=np.array([np.full((5, 2), np.nan) if photos[k].landmarks[i] is None else photos[k].landmarks[i]
                                 for k, i in faces], np.float32).reshape(-1, 5, 2),
             thumbs=np.frombuffer(b"".join(thumbs), np.uint8), offsets=np.cumsum([0] + [len(t) for t in thumbs]))


def _load(z: Any) -> list[Detected]:
    """``_save``'s photos back."""
    blob, offsets, owner = z["thumbs"].tobytes(), z["offsets"], z["photo"]
    boxes = [None if np.isnan(b).any() else [float(v) for v in b] for b in z["boxes"]]
    marks = [None if np.isnan(m).any() else np.round(m.astype(float), 1).tolist() for m in z["landmarks"]]
    probs = [None if np.isnan(p) else float(p) for p in z["probs"]]
    thumbs = [blob[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    vectors = z["vectors"].astype(np.float32)
    out = []
    for k, path in enumerate(z["paths"]):
        rows = np.flatnonzero(owner == k)
        out.append(Detected(str(z["hashes"][k]), str(path), int(z["sizes"][k]), int(z["widths"][k]), int(z["heights"][k]),
                            str(z["dates"][k]) or None, vectors[rows], [boxes[r] for r in rows], [thumbs[r] for r in rows],
                            [marks[r] for r in rows], [probs[r] for r in rows]))
    return out


class RunnerFaces(dict):  # type: ignore[type-arg]
    """``faces_of_photos``'s answer: ``str(path)`` → ``Detected`` or problems, and ``state``, the job's shard state."""

    state: Path


def faces_of_photos(paths: list[Path], model: dict[str, Any], faces: Any, runner: Runner, state: Path,
                    root: Path | None = None, labeled: bool = False, thumb_size: int = 96,
                    progress: Any = None) -> RunnerFaces:
    """Every face of ``paths`` (files, in the caller's order) from a ``FacesJob`` on ``runner``: ``str(path)`` →
    its ``Detected`` (``path`` as given), or its problems (unreadable). The job's shard state lives under ``state`` (a
    rerun after a kill resumes it) until the caller has committed the faces and calls ``drop_state`` on the answer.
    ``root``: the folder the job's paths are taken under (identities too, when ``labeled``; default: the photos'
    common folder). Paths are resolved here, once: relative, symlinked and absolute spellings name the same job."""
    import os

    from faceprint.bulk.runner import run_job
    from faceprint.bulk.shards import state_dir

    paths = [Path(p) for p in paths]
    base = (root or Path(os.path.commonpath([str(p.absolute().parent) for p in paths]))).absolute()
    rels = [p.absolute().relative_to(base).as_posix() for p in paths]
    job = FacesJob(str(base.resolve()), str(Path(state).resolve()), model, faces.detect, faces.margin, labeled,
                   model_id=faces.embedder.fingerprint(), thumb_size=thumb_size)
    bulk = run_job(job, runner.engine, runner.workers, runner.shard_size, progress, runner.ray_address, inputs=rels)
    job, src = bulk.job, Path(bulk.job.src)  # the job as it ran (its recipe names the shards read back below)
    by_rel: dict[str, Detected | list[dict[str, str]]] = {}
    for problem in bulk.problems:
        if problem["issue"] == "unreadable":
            rel = Path(problem["path"]).relative_to(src).as_posix()
            by_rel.setdefault(rel, []).append(problem)  # type: ignore[union-attr]
    for shard in bulk.shard_list:
        for got in job.read(shard):
            by_rel[got.path] = got
    out = RunnerFaces()
    out.state = state_dir(job)
    for p, rel in zip(paths, rels):
        got = by_rel.get(rel, [])
        if isinstance(got, list):  # problems named by the path as the caller gave it
            got = [{**q, "path": str(p), "detail": q["detail"].replace(str(src / rel), str(p))} for q in got]
        else:
            got = replace(got, path=str(p))
        out[str(p)] = got
    return out


def drop_state(found: RunnerFaces) -> None:
    """Remove the shard state of a ``faces_of_photos`` job once its faces are committed (no copy of them stays behind,
    and a photo edited later is read again); other jobs' state beside it is left alone."""
    import shutil

    shutil.rmtree(found.state, ignore_errors=True)
    for folder in (found.state.parent, found.state.parent.parent):  # and the folders it made, once empty
        try:
            folder.rmdir()
        except OSError:
            pass


def usable(found: dict[str, Detected | list[dict[str, str]]], path: Path, problems: list[dict[str, str]]) -> Detected | None:
    """``path``'s faces from ``faces_of_photos``, or None once its problems (unreadable, or no face) are in ``problems``."""
    got = found[str(path)]
    if isinstance(got, list):
        problems += got
        return None
    if not len(got.vectors):
        problems.append({"path": str(path), "issue": "no_face", "detail": "no face detected"})
        return None
    return got


def model_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of an index's or a command's model spec that workers load the model by."""
    return {k: spec[k] for k in ("weights", "checkpoint", "backend") if k in spec}
