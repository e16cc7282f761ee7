"""A photo library that groups faces into people as photos arrive: ``open_library`` and the ``Library`` it returns.

The library is a face index (SQLite the source of truth, FAISS derived) with the tables of ``people/tables.py``
beside the faces. Adding photos is incremental (photos already there, by content hash, are skipped), resumable
(one transaction per chunk of photos: faces, photo rows and their assignment commit together) and never moves a
face an earlier step assigned: only new and waiting faces are assigned (``people/assign.py``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.data.images import ImageLoadError
from faceprint.faults import fault_point
from faceprint.models import Embedder
from faceprint.models.fusion import face_embedder
from faceprint.models.pipeline import model_fingerprint
from faceprint.people.assign import average_distances, choose_joins, components_with, found_people
from faceprint.people.edits import EditsMixin, LibraryEditError
from faceprint.models.photos import Detected, detect_photos, photo_date, read_photos
from faceprint.people.records import AddReport
from faceprint.models.thresholds import thresholds_for
from faceprint.people.similarity import CASIA_PEOPLE_THRESHOLD, CASIA_WEBFACE, PEOPLE_FAR, Similarity
from faceprint.people.tables import SCHEMA
from faceprint.people.views import ViewsMixin
from faceprint.search.index import FaceIndex, open_index
from faceprint.search.store import FaceStore, IndexError_

__all__ = ["AddReport", "CASIA_PEOPLE_THRESHOLD", "Detected", "Library", "PEOPLE_FAR", "PeopleConfig", "open_library", "photo_date"]

Progress = Callable[[int, int], None]


@dataclass
class PeopleConfig:
    """How faces are grouped; kept in the library's metadata when it is created."""

    threshold: float | None = None  # squared L2 to join or found a person; None: see Library.threshold
    min_faces: int = 3  # waiting faces a cluster needs to found a new person (Immich's default)
    neighbours: int = 32  # nearest faces whose people a face may join
    max_component: int = 5000  # waiting faces clustered at once around new faces (bounds the O(n²) step)


class Library(ViewsMixin, EditsMixin):
    """A face index used as a photo library (see ``open_library``): adding photos here, reading in ``views.py``,
    the user's corrections in ``edits.py``."""

    def __init__(self, index: FaceIndex, config: PeopleConfig | None = None) -> None:
        self.index, self.store = index, index.store
        if not all(self.store.has_table(t) for t in ("photos", "people", "face_people", "rejections")):
            self.store.add_schema(SCHEMA)
        saved = self.store.meta.get("people")
        if config is not None or saved is None:
            self.config = config or PeopleConfig()
            self.store.set_meta({"people": asdict(self.config)})
        else:
            self.config = PeopleConfig(**saved)

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.store.db

    @property
    def threshold(self) -> float:
        """Squared L2 under which a face joins a person or faces found one: the config's, else the one
        ``calibrate`` fitted, else the one measured for the library's model, else the index's verdict threshold."""
        if self.config.threshold is not None:
            return self.config.threshold
        m = self.store.meta
        if m.get("people_threshold") is not None:
            return float(m["people_threshold"])
        measured = thresholds_for((m.get("embedder") or {}).get("weights"))
        return measured.people if measured is not None else self.index.threshold

    def similarity(self) -> Similarity:
        """The calibrated similarity shown beside distances: fitted on the named people, else published, else anchored
        at the threshold (0.5 there)."""
        m = self.store.meta
        if m.get("similarity"):
            return Similarity(**m["similarity"])
        measured = thresholds_for((m.get("embedder") or {}).get("weights"))
        if measured is not None and measured.c0 is not None and measured.c1 is not None:
            return Similarity(measured.c0, measured.c1, "published" if m["embedder"]["weights"] == "casia-webface" else "measured")
        return Similarity(float(np.sqrt(self.threshold)), CASIA_WEBFACE.c1, "threshold")

    # adding ----------------------------------------------------------------------------------------
    def known_hashes(self, hashes: Sequence[str]) -> set[str]:
        rows = self.db.execute("SELECT hash FROM photos WHERE hash IN (SELECT value FROM json_each(?))", (json.dumps(list(hashes)),))
        return {r[0] for r in rows}

    def add_photos(self, paths: Sequence[Path], progress: Progress | None = None, chunk: int = 16,
                   runner: Any = None) -> AddReport:
        """Detect, embed and assign every face of ``paths``; one transaction per ``chunk`` photos (a rerun resumes).

        A photo's content hash is checked before it is decoded: re-adding an unchanged folder reads and hashes the
        files and does nothing else. ``runner`` (``faceprint.bulk.Runner``): the photos not in the library yet are
        detected and embedded on the bulk runner first (its shards kept until they are committed, so a rerun after a
        kill resumes without detecting again), then added exactly as without it: the same chunks, in the same order."""
        from faceprint.bulk import drop_state

        report, seen = AddReport(), set()
        paths = [Path(p) for p in paths]
        spread = runner is not None and runner.spreads
        if spread:  # only new photos go to the runner; counted and listed below, chunk by chunk as without it
            hashed = read_photos(paths, keep=False)
            fresh = self._sort(paths, hashed, AddReport(), set())
            found = self._faces_from_runner(fresh, paths, runner, progress) if fresh else {}
        for start in range(0, len(paths), chunk):
            part = paths[start : start + chunk]
            given: list[Path] = []  # each photo of the batch as the caller named it
            if spread:
                batch = []
                for path in self._sort(part, hashed, report, seen):
                    got = found[str(path)]
                    if isinstance(got, list):
                        report.problems += got
                    else:
                        batch.append(replace(got, path=str(path.resolve())))
                        given.append(path)
            else:
                read, decoded = read_photos(part, keep=True), []
                for path in self._sort(part, read, report, seen):
                    data, digest = read[path]  # type: ignore[misc]
                    try:
                        img = self.index.faces.decode(data, str(path))  # the one decode rule (reduced for detection)
                    except ImageLoadError as exc:
                        report.problems.append({"path": str(path), "issue": "unreadable", "detail": str(exc)})
                        continue
                    decoded.append((str(path.resolve()), data, digest, img))
                    given.append(path)
                batch = detect_photos(self.index.faces, decoded)
            for path, det in zip(given, batch):
                if not len(det.vectors):
                    report.problems.append({"path": str(path), "issue": "no_face", "detail": "no face detected"})
            if batch:
                step = self.add_detected(batch)
                if step.face_ids:  # waiting faces near this chunk's try again (a rerun that adds nothing writes nothing)
                    step.retried += self.retry_waiting(near=step.face_ids)
                report.merge(step)
            if progress is not None:
                progress(min(start + chunk, len(paths)), len(paths))
        if spread:
            if fresh:
                drop_state(found)  # every photo is committed: the shards are not needed to resume
        return report

    def _sort(self, part: Sequence[Path], read: dict[Path, Any], report: AddReport, seen: set[str]) -> list[Path]:
        """The photos of ``part`` whose content is neither in the library nor earlier in this add (in order); the others
        are counted as already there, unreadable ones listed as problems."""
        digests = [read[p][1] for p in part if isinstance(read[p], tuple)]
        known, out = self.known_hashes(digests), []
        for path in part:
            got = read[path]
            if isinstance(got, dict):
                report.problems.append(got)
            elif got[1] in known or got[1] in seen:
                report.already += 1
            else:
                seen.add(got[1])
                out.append(path)
        return out

    def _faces_from_runner(self, paths: list[Path], every: list[Path], runner: Any, progress: Progress | None) -> Any:
        """``paths`` detected on the runner, as one job under the common folder of ``every`` photo of the add (the same
        job, and its finished shards, when a rerun after a kill has fewer photos left to add)."""
        from faceprint.bulk import faces_of_photos, model_of

        root = self.store.root.resolve()
        inside = [p for p in paths if root in Path(p).resolve().parents]
        if inside:
            raise IndexError_(f"{inside[0]} is inside the library {self.store.root}: keep the library outside the photos")
        model = model_of(self.store.meta.get("embedder") or {})
        if "+" in str(model.get("weights", "")):
            raise IndexError_("a fusion of models adds photos in one process: drop --workers/--engine")
        base = Path(os.path.commonpath([str(p.absolute().parent) for p in every]))
        return faces_of_photos(paths, model, self.index.faces, runner, self.store.root / ".bulk", root=base, progress=progress)

    def add_detected(self, photos: Sequence[Detected], report: AddReport | None = None,
                     after: Callable[[list[int]], None] | None = None) -> AddReport:
        """Add detected photos and assign their faces, in one transaction (photos whose hash is there, or repeated in
        ``photos``, are skipped). ``report`` counts only what was committed; ``after(face ids)`` runs in the transaction
        once the faces are assigned (an enrolment names its face there)."""
        report = report if report is not None else AddReport()
        unique: dict[str, Detected] = {}
        for ph in photos:
            unique.setdefault(ph.hash, ph)
        report.already += len(photos) - len(unique)
        photos = list(unique.values())
        step = AddReport()
        self.store.refresh()  # searches inside the transaction use the FAISS structure as it is (no catch-up there)
        vecs = [p.vectors for p in photos if len(p.vectors)]
        if not vecs:  # photos with no face are still recorded, so a rerun does not detect them again
            with self.store.transaction():
                self._insert_photos(photos, step)
            report.merge(step)
            return report
        flat = np.concatenate(vecs).astype(np.float32)
        owner = [i for i, p in enumerate(photos) for _ in range(len(p.vectors))]
        paths = [photos[i].path for i in owner]
        boxes = [b for p in photos for b in p.boxes]
        thumbs = [t for p in photos for t in p.thumbs]
        names: list[str | None] = [None] * len(flat)  # filled with the names the assignment gives (a Milvus mirror)

        def inside(ids: list[int]) -> None:
            photo_ids = self._insert_photos(photos, step)
            if any(photo_ids[i] is None for i in owner):  # another process added one of them meanwhile
                raise _AlreadyThere()
            marks = [(p.landmarks[k] if k < len(p.landmarks) else None, p.probs[k] if k < len(p.probs) else None)
                     for p in photos for k in range(len(p.vectors))]
            self.db.executemany("INSERT INTO face_people (face_id, photo_id, how, landmarks, prob) VALUES (?, ?, 'auto', ?, ?)",
                                [(fid, photo_ids[o], json.dumps(lm) if lm is not None else None, pr)
                                 for fid, o, (lm, pr) in zip(ids, owner, marks)])
            self._assign(np.asarray(ids, np.int64), flat, np.array([photo_ids[o] for o in owner]), step)
            if after is not None:
                after(list(ids))
            named = dict(self.db.execute("SELECT id, identity FROM faces WHERE id IN (SELECT value FROM json_each(?))",
                                         (json.dumps(ids),)).fetchall())
            names[:] = [named.get(i) for i in ids]
            fault_point("library.assign")  # faces, photos and people written; transaction open
            step.faces, step.face_ids = len(ids), list(ids)

        try:
            self.store.add(flat, paths, names, boxes, thumbs, inside=inside)
        except _AlreadyThere:
            known = self.known_hashes([q.hash for q in photos])
            report.already += len(known)
            fresh = [p for p in photos if p.hash not in known]
            return self.add_detected(fresh, report, after) if fresh else report
        report.merge(step)
        return report

    def _insert_photos(self, photos: Sequence[Detected], report: AddReport) -> list[int | None]:
        out: list[int | None] = []
        known = self.known_hashes([p.hash for p in photos])
        now = time.time()
        for p in photos:
            if p.hash in known:
                out.append(None)
                continue
            cur = self.db.execute("INSERT INTO photos (hash, path, bytes, width, height, taken_at, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  (p.hash, p.path, p.size, p.width, p.height, p.taken_at, now))
            out.append(int(cur.lastrowid))
            report.photos += 1
        return out

    def enroll(self, digest: str, data: bytes, size: tuple[int, int], vectors: np.ndarray, boxes: list[list[float] | None],
               thumbs: list[bytes | None], name: str) -> tuple[int, int]:
        """A photo uploaded with a name (the server's /enroll): every face of it is added as any photo's, and the first
        (largest) is given to the person of that name (made if needed), in one transaction. A photo already in the
        library names its face nearest the upload's first. Returns (face id, person id)."""
        name = self.valid_name(name)
        vectors = np.asarray(vectors, np.float32).reshape(len(boxes), -1)
        named: list[int] = []
        report = self.add_detected([Detected(digest, f"upload:{digest[:16]}", len(data), size[0], size[1], photo_date(data),
                                             vectors, boxes, thumbs)],
                                   after=lambda ids: named.append(self._name_faces([ids[0]], name)))
        if report.face_ids:
            return report.face_ids[0], named[0]
        with self.store.transaction():  # already here: the same face, found by its vector
            rows = self.db.execute("SELECT f.id, f.vector FROM face_people fp JOIN faces f ON f.id = fp.face_id JOIN photos "
                                   "ph ON ph.id = fp.photo_id WHERE ph.hash = ?", (digest,)).fetchall()
            d = ((self.store.unpack(v for _, v in rows) - vectors[0]) ** 2).sum(1)
            if not rows or d.min() > 1e-3:
                raise LibraryEditError("this photo is in the library, but not this face (it was dismissed)")
            face = int(rows[int(np.argmin(d))][0])
            return face, self._name_faces([face], name)

    # assignment ------------------------------------------------------------------------------------
    def _people_of(self, face_ids: np.ndarray) -> np.ndarray:
        """Person of each face id (−1: none), for neighbour ids from a search."""
        rows = self.people_of_faces([int(i) for i in np.unique(face_ids) if i >= 0])
        return np.vectorize(lambda i: rows.get(int(i), -1), otypes=[np.int64])(face_ids) if face_ids.size else face_ids

    def _person_sums(self, people: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(person ids, sums of their unit face vectors, face counts) of ``people`` (None: every person with faces)."""
        where = "fp.person_id IS NOT NULL" if people is None else "fp.person_id IN (SELECT value FROM json_each(?))"
        rows = self.db.execute(f"SELECT fp.person_id, f.vector FROM face_people fp JOIN faces f ON f.id = fp.face_id WHERE "
                               f"{where}", () if people is None else (json.dumps([int(p) for p in people]),)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, self.store.dim)), np.zeros(0)
        pids, inverse, counts = np.unique(np.array([r[0] for r in rows]), return_inverse=True, return_counts=True)
        sums = np.zeros((len(pids), self.store.dim))
        np.add.at(sums, inverse, self.store.unpack(r[1] for r in rows))
        return pids, sums, counts.astype(np.float64)

    def _sums(self, people: np.ndarray) -> dict[int, tuple[np.ndarray, int]]:
        """{person: (sum of unit face vectors, face count)} of each person in ``people`` (−1 ignored)."""
        pids, sums, counts = self._person_sums(sorted({int(p) for p in np.unique(people) if p >= 0}))
        return {int(p): (s, int(c)) for p, s, c in zip(pids, sums, counts)}

    def _join(self, ids: np.ndarray, vectors: np.ndarray, photos: np.ndarray, how: str = "auto") -> int:
        """Join faces to existing people (the joins are written); returns how many joined."""
        if not len(ids):
            return 0
        dists, nbrs = self.store.nearest(vectors, self.config.neighbours)
        rejected = set(self.db.execute("SELECT face_id, person_id FROM rejections WHERE face_id IN (SELECT value FROM "
                                       "json_each(?))", (json.dumps(ids.tolist()),)).fetchall())
        present: dict[int, set[int]] = {}
        for ph, p in self.db.execute("SELECT photo_id, person_id FROM face_people WHERE person_id IS NOT NULL AND photo_id "
                                     "IN (SELECT value FROM json_each(?))", (json.dumps(np.unique(photos).tolist()),)):
            present.setdefault(ph, set()).add(p)
        people = self._people_of(nbrs)
        joins = choose_joins(average_distances(vectors, people, self._sums(people)), photos.tolist(), self.threshold,
                             rejected, ids.tolist(), present)
        done = 0
        for j in joins:  # only a face that still waits: an automatic step never moves an assigned face
            done += self.db.execute("UPDATE face_people SET person_id = ?, how = ? WHERE face_id = ? AND person_id IS NULL",
                                    (j.person, how, int(ids[j.row]))).rowcount
        self._sync_identities([j.person for j in joins])
        return done

    def _assign(self, ids: np.ndarray, vectors: np.ndarray, photos: np.ndarray, report: AddReport) -> None:
        """New faces join people; those left wait and are clustered with the waiting faces around them."""
        report.joined += self._join(ids, vectors, photos)
        waiting = self._waiting()
        if not len(waiting[0]):
            return
        wid, wvec, wphoto = waiting
        seeds = np.flatnonzero(np.isin(wid, ids))
        if not len(seeds):
            return
        rows = components_with(wvec, seeds, self.threshold, self.config.max_component)
        labels = found_people(wvec[rows], wphoto[rows], self.threshold, self.config.min_faces)
        for label in range(labels.max() + 1 if len(labels) else 0):
            members = rows[labels == label]
            self._new_person(wid[members].tolist(), wvec[members], how="auto")
            report.founded += 1

    def _waiting(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face ids, vectors, photo ids) of the faces with no person (waiting or rejected; not those set apart)."""
        rows = self.db.execute("SELECT f.id, f.vector, fp.photo_id FROM face_people fp JOIN faces f ON f.id = fp.face_id "
                               "WHERE fp.person_id IS NULL AND fp.how != 'apart' ORDER BY f.id").fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        return ids, self.store.unpack(r[1] for r in rows), np.array([r[2] for r in rows], np.int64)

    def _new_person(self, face_ids: list[int], vectors: np.ndarray, how: str, name: str | None = None) -> int:
        """A new person of ``face_ids`` (in the caller's transaction); its feature face is the one nearest the centre."""
        centre = vectors.mean(0)
        feature = face_ids[int(((vectors - centre) ** 2).sum(1).argmin())]
        pid = int(self.db.execute("INSERT INTO people (name, feature_face, created_at) VALUES (?, ?, ?)",
                                  (name, feature, time.time())).lastrowid)
        self.db.execute("UPDATE face_people SET person_id = ?, how = ? WHERE face_id IN (SELECT value FROM json_each(?))",
                        (pid, how, json.dumps(face_ids)))
        self._sync_identities([pid])
        return pid

    def _sync_identities(self, people: Sequence[int]) -> None:
        """faces.identity follows the person's name (search answers and calibration read it)."""
        self.db.execute("UPDATE faces SET identity = (SELECT p.name FROM face_people fp JOIN people p ON p.id = fp.person_id "
                        "WHERE fp.face_id = faces.id) WHERE id IN (SELECT face_id FROM face_people WHERE person_id IN "
                        "(SELECT value FROM json_each(?)))", (json.dumps(sorted(set(int(p) for p in people))),))

    def retry_waiting(self, near: Sequence[int] | None = None) -> int:
        """Waiting faces try to join someone again (a person may have grown next to them): those within the threshold
        of a face of ``near`` that has a person, or every waiting face when ``near`` is None; returns how many joined.
        Read and written in one transaction, so a face another writer placed meanwhile is left alone."""
        self.store.refresh()
        with self.store.transaction():
            wid, wvec, wphoto = self._waiting()
            if len(wid) and near is not None:
                rows = self.db.execute("SELECT f.vector FROM faces f JOIN face_people fp ON fp.face_id = f.id WHERE "
                                       "fp.person_id IS NOT NULL AND f.id IN (SELECT value FROM json_each(?))",
                                       (json.dumps([int(i) for i in near]),)).fetchall()
                if not rows:
                    return 0
                lvec = self.store.unpack(r[0] for r in rows)
                close = (wvec @ lvec.T).max(1) > 1 - self.threshold / 2
                wid, wvec, wphoto = wid[close], wvec[close], wphoto[close]
            return self._join(wid, wvec, wphoto) if len(wid) else 0

    def close(self) -> None:
        self.index.close()


class _AlreadyThere(Exception):
    """A photo of the chunk was added by another process since the caller looked: the chunk is retried without it."""


def open_library(root: str | Path, spec: dict[str, Any] | None = None, embedder: Embedder | None = None,
                 detect: bool | None = None, config: PeopleConfig | None = None) -> "Library":
    """Open the library at ``root``, creating it with the model ``spec`` (or ``embedder``) when it does not exist."""
    root = Path(root).absolute()  # resolved where it enters: its .bulk state and messages name one folder
    if (root / "faces.sqlite").is_file():
        return Library(open_index(root, embedder, detect), config)
    if spec is None and embedder is None:
        raise IndexError_(f"{root} is not a library yet: give the model (weights) to create it")
    emb = embedder or Embedder.from_spec(spec or {})
    faces = face_embedder(emb, detect=detect)
    meta = {**(spec or {"weights": emb.name}), **({"weights": emb.name} if emb.align == "fused" else {}),  # a fusion:
            "detect": faces.detect, "margin": faces.margin}  # with its weights, as an index stores it
    store = FaceStore(root, create=True, model_id=model_fingerprint(emb), dim=emb.dim, embedder=meta)
    return Library(FaceIndex(store, faces), config)
