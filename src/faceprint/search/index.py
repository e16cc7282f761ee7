"""Build, grow and query a face index: ``build_index``, ``open_index`` and the ``FaceIndex`` they return."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.data.images import IMAGE_EXTENSIONS, ImageLoadError
from faceprint.faults import fault_point
from faceprint.models.thresholds import thresholds_for
from faceprint.models import Embedder
from faceprint.models.fusion import FusedEmbedder, face_embedder
from faceprint.models.pipeline import FaceCrop, FaceEmbedder, model_fingerprint, thumbnail
from faceprint.search.lock import writer_lock
from faceprint.search.rows import FaceRows
from faceprint.search.store import FaceStore, IndexError_, Match

__all__ = ["AddReport", "DEFAULT_THRESHOLD", "FaceIndex", "build_index", "calibrate_store", "calibrate_threshold", "gallery_images",
           "looks_like_identities", "open_index"]

DEFAULT_THRESHOLD = 0.95  # squared L2: casia-webface's verdict (FAR 6.7e-4 on LFW); for unmeasured models that cannot calibrate
KEPT_FILES = ("auth.sqlite",)  # files of the folder that are not the faces (a swap carries them to the new index)
Progress = Callable[[int, int], None]


@dataclass
class AddReport:
    """What an add or build did: faces added, images skipped as already indexed, and problems per image."""

    faces: int = 0
    images: int = 0
    already: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    carried: int = 0  # build --force: faces enrolled through a server, moved from the replaced index


@dataclass
class QueryFace:
    """One face found in a query image and its nearest indexed faces."""

    crop: FaceCrop
    vector: np.ndarray
    matches: list[Match]


def gallery_images(root: Path, identities: bool | None = None) -> list[tuple[Path, str | None]]:
    """Images under ``root`` with their identity: the folder under ``root`` when ``identities`` (a dataset laid out
    as ``root/<identity>/<image>``), else None (a photo collection: folders are albums, every face is indexed).
    ``identities=None`` decides by the layout (``looks_like_identities``). ``root`` is resolved once here: a
    relative, symlinked or absolute spelling of one folder gives the same paths."""
    root = Path(root).resolve()
    if root.is_file():
        return [(root, None)]
    out, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or a second link to a folder already walked
            dirs[:] = []
            continue
        seen.add(real)
        for name in files:
            p = Path(folder) / name
            if p.suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                out.append(p)
    out.sort()
    rels = [p.relative_to(root).parts for p in out]
    if identities is None:
        identities = looks_like_identities(root, rels)
    return [(p, rel[0] if identities and len(rel) > 1 else None) for p, rel in zip(out, rels)]


def looks_like_identities(root: Path, rels: list[tuple[str, ...]], sample: int = 24, max_side: int = 1500) -> bool:
    """Whether a tree is an identity dataset: every image exactly one folder deep, at least two folders, and its
    images face-sized (the median of the sampled ones at most ``max_side`` px on the long side: crops, not camera
    photos). A photo collection (``2024/summer/…``, loose photos, one album, camera-sized files) is not."""
    from PIL import Image

    if not rels or any(len(r) != 2 for r in rels) or len({r[0] for r in rels}) < 2:
        return False
    step, sides = max(1, len(rels) // sample), []
    for r in rels[::step][:sample]:
        try:
            with Image.open(root.joinpath(*r)) as im:  # the header only
                sides.append(max(im.size))
        except Exception:  # noqa: BLE001 - an unreadable file is reported when it is added
            continue
    return not sides or float(np.median(sides)) <= max_side


def calibrate_threshold(vectors: np.ndarray, identities: list[str | None], far: float = 1e-3,
                        max_pairs: int = 1_000_000, seed: int = 0) -> float | None:
    """The squared-L2 threshold at which a fraction ``far`` of different-identity pairs of the gallery match.

    A search compares a face with every gallery face, so the verdict is set by the false-accept rate
    (FaceNet's VAL@FAR operating point), not by best accuracy on balanced pairs, which accepts far more
    impostors. Every pair is used while there are at most ``max_pairs`` (galleries up to about 1,400 faces),
    else that many random ones (about 1,000 below the threshold at FAR 1e-3: a few per cent of error).
    None when the gallery has fewer than two identities.
    """
    labels = np.array([i if i is not None else "" for i in identities])
    keep = labels != ""
    vectors, labels = np.asarray(vectors, np.float32)[keep], labels[keep]
    if len(np.unique(labels)) < 2:
        return None
    n = len(labels)
    if n * (n - 1) // 2 <= max_pairs:
        a, b = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, n, (2, 2 * max_pairs))
    diff = labels[a] != labels[b]
    a, b = a[diff][:max_pairs], b[diff][:max_pairs]
    d_diff = np.concatenate([((vectors[a[i : i + 200_000]] - vectors[b[i : i + 200_000]]) ** 2).sum(1)
                             for i in range(0, len(a), 200_000)])
    return float(np.quantile(d_diff, far))


def calibrate_store(store: FaceStore, far: float = 1e-3) -> float | None:
    """Calibrate and save a store's verdict threshold (no model needed); None and nothing saved when it cannot."""
    _, vecs, idents = store.all_vectors()
    t = calibrate_threshold(vecs, idents, far)
    if t is not None:
        store.set_threshold(t)
    return t


class FaceIndex:
    """A :class:`FaceStore` plus the model that fills it; the model must be the one the index was built with."""

    def __init__(self, store: FaceStore, faces: FaceEmbedder) -> None:
        self.store, self.faces = store, faces

    @property
    def threshold(self) -> float:
        """The verdict threshold: calibrated on this index, else measured for its model, else DEFAULT_THRESHOLD."""
        t = self.store.meta.get("threshold")
        if t is not None:
            return float(t)
        measured = thresholds_for((self.store.meta.get("embedder") or {}).get("weights"))
        return measured.verdict if measured is not None else DEFAULT_THRESHOLD

    def add_images(self, images: list[tuple[Path, str | None]], chunk: int = 64, progress: Progress | None = None,
                   all_faces: bool | None = None, atomic: bool = True) -> AddReport:
        """Detect, embed and add. ``atomic``: one transaction for all (else one per chunk, resumable).

        Labeled images (with an identity) index their largest face; unlabeled ones index every face.
        Images already in the index (same path) are skipped.
        """
        report = AddReport()
        known = self.store.paths(str(p) for p, _ in images)
        todo = [(p, ident) for p, ident in images if str(p) not in known]
        report.already = len(images) - len(todo)
        pending: list[tuple[np.ndarray, str, str | None, list[float] | None, bytes]] = []
        for i in range(0, len(todo), chunk):
            found: list[tuple[FaceCrop, str, str | None]] = []
            for path, ident in todo[i : i + chunk]:
                try:
                    crops = self.faces.crops(self.faces.load(path), all_faces if all_faces is not None else ident is None)
                except ImageLoadError as exc:
                    report.problems.append({"path": str(path), "issue": "unreadable", "detail": str(exc)})
                    continue
                if not crops:
                    report.problems.append({"path": str(path), "issue": "no_face", "detail": "no face detected"})
                    continue
                found += [(c, str(path), ident) for c in crops]
                report.images += 1
            vectors = self.faces.embed_crops([c for c, _, _ in found])  # one batched forward per chunk
            pending += [(v, p, ident, c.box, thumbnail(c.image)) for v, (c, p, ident) in zip(vectors, found)]
            if not atomic and pending:
                self._commit(pending, report, sync=False)
            if progress is not None:
                progress(min(i + chunk, len(todo)), len(todo))
        if pending:
            self._commit(pending, report)
        elif not atomic:
            self.store.sync()
        return report

    def _commit(self, pending: list, report: AddReport, sync: bool = True) -> None:  # type: ignore[type-arg]
        vecs = np.stack([p[0] for p in pending])
        ids = self.store.add(vecs, [p[1] for p in pending], [p[2] for p in pending], [p[3] for p in pending],
                             [p[4] for p in pending], sync=sync, unique_paths=True)
        report.faces += len(ids)  # faces of paths another process added meanwhile are not added twice
        pending.clear()

    def query(self, image: Any, k: int = 5) -> list[QueryFace]:
        """Every face of a query image (a path, bytes or RGB Pillow image) with its ``k`` nearest faces."""
        from PIL import Image

        img = image if isinstance(image, Image.Image) else self.faces.load(image)
        crops = self.faces.crops(img, all_faces=True)
        vecs = self.faces.embed_crops(crops)
        matches = self.store.search(vecs, k) if len(vecs) else []
        return [QueryFace(c, v, m) for c, v, m in zip(crops, vecs, matches)]

    def recalibrate(self, far: float = 1e-3) -> float | None:
        """Set the verdict threshold from the gallery's identities (None: too few to calibrate)."""
        return calibrate_store(self.store, far)

    def close(self) -> None:
        self.store.close()


def open_index(root: str | Path, embedder: Embedder | None = None, detect: bool | None = None,
               backend: str | None = None) -> FaceIndex:
    """Open an index with its own model (or ``embedder``, refused if it is another model).

    ``detect`` overrides the index's setting for queries and adds (e.g. a gallery of pre-cropped faces
    searched with ordinary photos); ``backend`` the inference backend it was built with (same model).
    """
    store = FaceStore(root)
    meta = store.meta
    spec = meta.get("embedder") or {}
    emb = embedder or Embedder.from_spec({**spec, "backend": backend} if backend else spec)
    fingerprint = model_fingerprint(emb)
    if fingerprint != store.model_id:
        store.close()
        raise IndexError_(f"{root} was built with another model ({spec}); this one differs (fingerprint "
                          f"{fingerprint[:12]}… vs {store.model_id[:12]}…): use the index's model or build a new index")
    # indexes from before the margin was stored were cut with 32 px at any input size
    faces = face_embedder(emb, detect=bool(spec.get("detect", True)) if detect is None else detect,
                          margin=float(spec.get("margin", 32.0)))
    return FaceIndex(store, faces)


def _meta_of(root: Path) -> dict[str, Any]:
    """The metadata of the index at ``root``, read without opening it as a store (no FAISS load, no collection)."""
    rows = FaceRows(root / "faces.sqlite")
    try:
        return rows.meta()
    finally:
        rows.close()


def _carry_enrolments(old_root: Path, new: FaceStore) -> int:
    """Add the faces enrolled through the server (paths ``upload:…``) of the index at ``old_root`` to ``new`` when
    both are of the same model; returns how many."""
    old = FaceRows(old_root / "faces.sqlite", new.dim)
    try:
        if old.meta().get("model_id") != new.model_id:
            return 0
        ids, vecs, idents = old.vectors_of("WHERE path LIKE 'upload:%'")
        faces = old.faces(ids.tolist())
    finally:
        old.close()
    if not len(ids):
        return 0
    rows = [faces[int(i)] for i in ids]
    thumbs = [old_root / "thumbs" / f"{int(i)}.jpg" for i in ids]
    added = new.add(vecs, [f.path for f in rows], idents, [f.box for f in rows],
                    [t.read_bytes() if t.is_file() else None for t in thumbs], unique_paths=True)
    return len(added)


def _carry_files(old_root: Path, new_root: Path) -> None:
    """SQLite files an index folder keeps beside its faces (``auth.sqlite``: the server's users, keys and sessions),
    copied into the new folder as one consistent snapshot each."""
    import sqlite3
    from contextlib import closing

    for name in KEPT_FILES:
        if (old_root / name).is_file():
            with closing(sqlite3.connect(old_root / name)) as a, closing(sqlite3.connect(new_root / name)) as b:
                a.backup(b)


def _drop_collection(root: Path) -> None:
    """Drop the Milvus collection of the index at ``root``, if it has one."""
    if not (root / "faces.sqlite").is_file():
        return
    meta = _meta_of(root)
    from faceprint.search.milvus import milvus_of

    vectors = milvus_of(meta.get("vectors") or {}, int(meta["dim"]))  # None for the FAISS default
    if vectors is not None:
        vectors.drop()
        vectors.close()


def build_index(gallery: str | Path, out: str | Path, spec: dict[str, Any], detect: bool | None = None, kind: str = "auto",
                force: bool = False, progress: Progress | None = None, embedder: Embedder | None = None,
                vectors: dict[str, Any] | None = None, runner: Any = None,
                identities: bool | None = None) -> tuple[FaceIndex, AddReport]:
    """Index every image of ``gallery`` into a new index at ``out``.

    The index is built in ``.<out>.building`` (committed chunk by chunk, so a rerun resumes) and
    renamed into place at the end: a killed build never touches an existing index at ``out``.
    With a ``runner`` (``faceprint.bulk.Runner``) that spreads, the faces are detected and embedded on the bulk runner
    (resumable shards) and added as ``add_images`` adds them: the same images, order and chunks.
    """
    out, gallery = Path(out).absolute(), Path(gallery).resolve()
    if out.exists() and not force:
        raise IndexError_(f"{out} exists; use `faceprint index add` to grow it, or --force to replace it")
    images = gallery_images(Path(gallery), identities)
    if not images:
        raise IndexError_(f"no images under {gallery}")
    emb = embedder or Embedder.from_spec(spec)
    tmp = out.parent / f".{out.name}.building"
    faces = face_embedder(emb, detect=detect)  # None: as the model expects (a model for ready crops does not detect)
    spec = {**spec, "detect": faces.detect, "margin": faces.margin, "source": str(Path(gallery).resolve())}
    if isinstance(emb, FusedEmbedder):  # the weights too, so the index reopens with the same fusion
        spec["weights"] = emb.name
    if vectors and vectors.get("backend") == "milvus" and not vectors.get("collection"):  # one collection per build
        import time

        vectors = {**vectors, "collection": f"faceprint_{int(time.time() * 1000)}"}
    store = FaceStore(tmp, create=True, model_id=model_fingerprint(emb), dim=emb.dim, embedder=spec, kind=kind,
                      vectors=vectors)
    began = store.meta.get("embedder") or {}
    wanted = {k: spec[k] for k in ("detect", "margin", "source")}
    if {k: began.get(k, wanted[k] if k == "source" else None) for k in wanted} != wanted:  # resumed builds must match
        store.close()
        raise IndexError_(f"{tmp} holds a build begun with detect={began.get('detect')}, margin={began.get('margin')}, "
                          f"source {began.get('source')}; rerun with the same gallery and flags to resume it, or "
                          f"delete {tmp} to start over")
    index = FaceIndex(store, faces)
    if runner is not None and runner.spreads:
        if isinstance(emb, FusedEmbedder):
            store.close()
            raise IndexError_("a fusion of models builds in one process: drop --workers/--engine")
        if Path(gallery).is_file():  # one photo: nothing to spread
            report = index.add_images(images, progress=progress, atomic=False)
        else:
            report = _add_from_runner(index, images, Path(gallery), tmp, spec, runner, progress)
    else:
        report = index.add_images(images, progress=progress, atomic=False)
    if store.meta.get("threshold") is None:
        index.recalibrate()
    store.close()
    old = out.parent / f".{out.name}.old"  # also what a build killed inside the swap left
    if out.exists():  # swapped by two renames under the old index's writer lock: no write of it is in flight, and
        # a live server keeps answering from its open files, then follows the swap (FaceStore follows it)
        _clear(old)
        with writer_lock(out, timeout=store.lock_timeout):
            new = FaceStore(tmp)
            try:  # faces enrolled through a server meanwhile are not the gallery's: they move to the new index
                report.carried = _carry_enrolments(out, new)
                _carry_files(out, tmp)
            finally:
                new.close()
            out.rename(old)
            fault_point("swap")
            tmp.rename(out)
        _drop_collection(old)  # a Milvus collection of the replaced index is its vectors' only other copy
    else:
        tmp.rename(out)
    _clear(old)
    return open_index(out, emb), report


def _clear(old: Path) -> None:
    """Remove a replaced index folder. A reader still on it may recreate its SQLite side files while it goes; what
    cannot be removed now is moved aside (``.<name>.old-<ns>``, removed by a later build), so the name is free."""
    import time

    for leftover in [old, *old.parent.glob(f"{old.name}-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    if old.exists():
        old.rename(old.with_name(f"{old.name}-{time.time_ns()}"))


def _add_from_runner(index: FaceIndex, images: list[tuple[Path, str | None]], gallery: Path, tmp: Path,
                     spec: dict[str, Any], runner: Any, progress: Progress | None, chunk: int = 64) -> AddReport:
    """``add_images`` with detection and embedding on the bulk runner: the same images in the same order and chunks."""
    from faceprint.bulk import drop_state, faces_of_photos, model_of, usable

    report = AddReport()
    known = index.store.paths(str(p) for p, _ in images)
    todo = [(p, ident) for p, ident in images if str(p) not in known]
    report.already = len(images) - len(todo)
    if not todo:
        return report
    found = faces_of_photos([p for p, _ in todo], model_of(spec), index.faces, runner, tmp / ".bulk", root=gallery,
                            labeled=any(ident is not None for _, ident in todo), progress=progress)
    for i in range(0, len(todo), chunk):
        vecs, paths, idents, boxes, thumbs = [], [], [], [], []
        for path, ident in todo[i : i + chunk]:
            got = usable(found, path, report.problems)
            if got is None:
                continue
            report.images += 1
            vecs.append(got.vectors)
            paths += [str(path)] * len(got.vectors)
            idents += [ident] * len(got.vectors)
            boxes += got.boxes
            thumbs += got.thumbs
        if vecs:
            ids = index.store.add(np.concatenate(vecs), paths, idents, boxes, thumbs, sync=False, unique_paths=True)
            report.faces += len(ids)
    index.store.sync()
    drop_state(found)  # every face is committed: a rerun no longer needs the shards
    return report
