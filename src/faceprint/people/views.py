"""Reading a library: people, a person's faces, waiting faces in groups, photos, merge suggestions, who is in a
photo, and the calibration of its threshold and similarity from the people the user named."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from faceprint.people.tables import Face, Person, Photo

__all__ = ["ViewsMixin"]

_PEOPLE = """SELECT p.id, p.name, COUNT(fp.face_id), p.hidden, p.feature_face FROM people p
LEFT JOIN face_people fp ON fp.person_id = p.id WHERE p.merged_into IS NULL {where} GROUP BY p.id
HAVING COUNT(fp.face_id) > 0 OR p.name IS NOT NULL"""
_FACES = """SELECT fp.face_id, fp.photo_id, fp.person_id, fp.how, f.box, p.name FROM face_people fp
JOIN faces f ON f.id = fp.face_id LEFT JOIN people p ON p.id = fp.person_id"""


T = TypeVar("T", bound=Callable[..., Any])


def _locked(fn: T) -> T:
    """Run a read in one snapshot of committed rows (the store's per-thread read connection; inside a write
    transaction, that transaction's own view), so its several statements agree with each other."""

    @functools.wraps(fn)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[no-untyped-def]
        with self.store.reading():
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _face(r: tuple[Any, ...]) -> Face:
    return Face(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None, r[5])


class ViewsMixin:
    """Reads of a :class:`~faceprint.people.library.Library`."""

    db: Any
    store: Any
    index: Any
    config: Any

    @_locked
    def people(self, hidden: bool = False) -> list[Person]:
        """Live people: named ones first (by name), then unnamed ones, most faces first; hidden ones only if asked."""
        rows = self.db.execute(_PEOPLE.format(where="" if hidden else "AND p.hidden = 0")).fetchall()
        people = [Person(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]
        return sorted(people, key=lambda p: (p.name is None, (p.name or "").casefold(), -p.faces, p.id))

    @_locked
    def person(self, person: int) -> Person:
        pid = self.resolve(person)  # type: ignore[attr-defined]
        r = self.db.execute(_PEOPLE.format(where="AND p.id = ?").replace("HAVING COUNT(fp.face_id) > 0 OR p.name IS NOT NULL", ""),
                            (pid,)).fetchone()
        return Person(r[0], r[1], r[2], bool(r[3]), r[4])

    @_locked
    def faces_of(self, person: int, after: int = 0, limit: int | None = None) -> list[Face]:
        """A person's faces by id: those after face id ``after``, at most ``limit`` of them."""
        pid = self.resolve(person)  # type: ignore[attr-defined]
        return [_face(r) for r in self.db.execute(_FACES + " WHERE fp.person_id = ? AND fp.face_id > ? ORDER BY fp.face_id "
                                                  "LIMIT ?", (pid, after, -1 if limit is None else limit))]

    @_locked
    def waiting_groups(self, limit: int = 2000) -> list[list[Face]]:
        """Faces with no person (the latest ``limit``), grouped by average linkage with photo cannot-links: a group is
        named in one action. Largest groups first."""
        from faceprint.cluster.methods import agglomerative

        rows = self.db.execute(_FACES.replace("SELECT fp.face_id", "SELECT f.vector, fp.face_id") +
                               " WHERE fp.person_id IS NULL ORDER BY fp.face_id DESC LIMIT ?", (limit,)).fetchall()
        apart = [r for r in rows if r[4] == "apart"]  # "Not this group": each alone, after the groups
        rows = [r for r in rows if r[4] != "apart"]
        groups: dict[int, list[Face]] = {}
        if rows:
            vecs = self.store.unpack(r[0] for r in rows)
            labels = agglomerative(vecs, self.threshold, groups=np.array([r[2] for r in rows]))  # type: ignore[attr-defined]
            for label, r in zip(labels, rows):
                groups.setdefault(int(label), []).append(_face(r[1:]))
        return sorted(groups.values(), key=lambda g: (-len(g), g[0].id)) + [[_face(r[1:])] for r in apart]

    @_locked
    def photo(self, photo_id: int) -> Photo | None:
        r = self.db.execute("SELECT id, path, width, height, taken_at FROM photos WHERE id = ?", (int(photo_id),)).fetchone()
        if r is None:
            return None
        faces = tuple(_face(f) for f in self.db.execute(_FACES + " WHERE fp.photo_id = ? ORDER BY fp.face_id", (r[0],)))
        return Photo(r[0], r[1], r[2], r[3], r[4], faces)

    @_locked
    def photo_path(self, photo_id: int) -> Path | None:
        """The file of a photo of the library (only ids of its own photos map to files), if it is still there."""
        r = self.db.execute("SELECT path FROM photos WHERE id = ?", (int(photo_id),)).fetchone()
        return Path(r[0]) if r is not None and Path(r[0]).is_file() else None

    @_locked
    def photo_ids_with(self, people: Sequence[int]) -> list[int]:
        """Ids of the photos in which every one of ``people`` is, newest first (by EXIF date, then by when added)."""
        pids = sorted({self.resolve(p) for p in people})  # type: ignore[attr-defined]
        return [r[0] for r in self.db.execute(
            "SELECT fp.photo_id FROM face_people fp JOIN photos ph ON ph.id = fp.photo_id WHERE fp.person_id IN "
            "(SELECT value FROM json_each(?)) GROUP BY fp.photo_id HAVING COUNT(DISTINCT fp.person_id) = ? "
            "ORDER BY COALESCE(ph.taken_at, '') DESC, ph.added_at DESC, ph.id DESC", (json.dumps(pids), len(pids)))]

    @_locked
    def photos_with(self, people: Sequence[int]) -> list[Photo]:
        """Photos in which every one of ``people`` is, newest first."""
        return [p for p in (self.photo(i) for i in self.photo_ids_with(people)) if p is not None]

    @_locked
    def suggestions(self, person: int, n: int = 5) -> list[tuple[Person, float, float]]:
        """People ``person`` might be (merge candidates), most similar first: (person, similarity, distance). The
        distance is average linkage, the mean squared distance over all pairs of their faces (2 − 2·Sa·Sb/(na·nb)),
        so the similarity reads as for one pair of faces. People sharing a photo with them are never suggested."""
        pid = self.resolve(person)  # type: ignore[attr-defined]
        pids, sums, counts = self._person_sums()  # type: ignore[attr-defined]
        if pid not in pids:
            return []
        k = int(np.flatnonzero(pids == pid)[0])
        d = np.maximum(2 - 2 * (sums @ sums[k]) / (counts * counts[k]), 0.0)
        shared = {r[0] for r in self.db.execute(
            "SELECT DISTINCT b.person_id FROM face_people a JOIN face_people b ON a.photo_id = b.photo_id WHERE a.person_id = ? "
            "AND b.person_id IS NOT NULL", (pid,))}
        sim = self.similarity()  # type: ignore[attr-defined]
        out = []
        for j in np.argsort(d, kind="stable"):
            if int(pids[j]) == pid or int(pids[j]) in shared:
                continue
            out.append((self.person(int(pids[j])), float(sim(d[j])), float(d[j])))
            if len(out) == n:
                break
        return out

    @_locked
    def people_of_faces(self, face_ids: Sequence[int]) -> dict[int, int]:
        """The person of each of these faces that has one (face id → person id)."""
        return dict(self.db.execute("SELECT face_id, person_id FROM face_people WHERE person_id IS NOT NULL AND face_id IN "
                                    "(SELECT value FROM json_each(?))", (json.dumps([int(i) for i in face_ids]),)).fetchall())

    @_locked
    def identify(self, vectors: np.ndarray) -> list[tuple[int | None, float, int | None]]:
        """For each face of one photo: (the person it is, or None; the average-linkage distance the decision rests
        on; the closest person). A face that is nobody gets the distance to its closest person by the same rule (so
        the similarity shown is the decision's, never a single nearest face's); two faces of the photo are never
        given the same person."""
        from faceprint.people.assign import average_distances, choose_joins

        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if not len(vectors):
            return []
        _, nbrs = self.store.nearest(vectors, self.config.neighbours)
        people = self._people_of(nbrs)  # type: ignore[attr-defined]
        candidates = average_distances(vectors, people, self._sums(people))  # type: ignore[attr-defined]
        joins = choose_joins(candidates, [0] * len(vectors), self.threshold)  # type: ignore[attr-defined]
        found = {j.row: (self.resolve(j.person), j.distance) for j in joins}  # type: ignore[attr-defined]
        taken = {j.person for j in joins}  # a person another face of this photo is: not a candidate for this one
        out: list[tuple[int | None, float, int | None]] = []
        for i, cand in enumerate(candidates):
            free = {p: d for p, d in cand.items() if p not in taken}
            if i in found:
                out.append((found[i][0], found[i][1], found[i][0]))
            elif free:  # every free candidate is past the threshold (else the greedy joins would have taken it)
                best = min(free, key=lambda p: (free[p], p))
                out.append((None, free[best], self.resolve(best)))  # type: ignore[attr-defined]
            else:
                out.append((None, float("inf"), None))
        return out

    def who_is_in(self, image: Any) -> list[dict[str, Any]]:
        """Every face of a photo (a path, bytes or RGB image) with the person it is, if anyone."""
        from PIL import Image

        img = image if isinstance(image, Image.Image) else self.index.faces.load(image)
        crops = self.index.faces.crops(img, all_faces=True)
        vecs = self.index.faces.embed_crops(crops)
        return self.describe(crops, vecs)

    @_locked
    def describe(self, crops: Sequence[Any], vectors: np.ndarray) -> list[dict[str, Any]]:
        """Each face: its person (or none), and the calibrated similarity of the decision (``similarity``: to that
        person; for nobody, to the closest person, with who that is in ``closest``)."""
        sim = self.similarity()  # type: ignore[attr-defined]
        out = []
        for crop, (pid, d, near) in zip(crops, self.identify(vectors)):
            person = self.person(pid) if pid is not None else None
            closest = self.person(near) if near is not None and pid is None else None
            out.append({"box": crop.box, "person": person.id if person else None, "name": person.name if person else None,
                        "similarity": round(float(sim(d)), 4) if np.isfinite(d) else 0.0,
                        "closest": {"id": closest.id, "name": closest.name} if closest else None})
        return out

    def calibrate(self, far: float = 1e-3, people_far: float | None = None, max_pairs: int = 200_000,
                  seed: int = 0) -> dict[str, Any]:
        """Fit on the faces of named people, and save in the library: search's verdict threshold (FAR ``far`` over
        their pairs, as an index calibrates), the people threshold (FAR ``people_far``, default ``PEOPLE_FAR``) and the
        similarity mapping. Needs two named people with two faces each."""

        from faceprint.people.similarity import PEOPLE_FAR, fit_similarity
        from faceprint.search.index import calibrate_threshold

        rows = self.db.execute("SELECT f.vector, fp.person_id FROM face_people fp JOIN faces f ON f.id = fp.face_id JOIN "
                               "people p ON p.id = fp.person_id WHERE p.name IS NOT NULL").fetchall()
        owners = np.array([r[1] for r in rows])
        counts = dict(zip(*np.unique(owners, return_counts=True))) if len(rows) else {}
        if sum(1 for c in counts.values() if c >= 2) < 2:
            from faceprint.people.edits import LibraryEditError

            raise LibraryEditError("calibrating needs at least two named people with two faces or more each")
        vecs = self.store.unpack(r[0] for r in rows)
        threshold = calibrate_threshold(vecs, [str(o) for o in owners], far)
        people_threshold = calibrate_threshold(vecs, [str(o) for o in owners], people_far or PEOPLE_FAR)
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, len(rows), (2, max_pairs))
        same_pairs = np.flatnonzero(owners[:, None] == owners[None, :]) if len(rows) <= 4000 else np.zeros(0, int)
        keep = a != b
        a, b = a[keep], b[keep]
        if len(same_pairs):  # every same-person pair while they are few (random pairs rarely hit one)
            i, j = np.divmod(same_pairs, len(rows))
            a, b = np.concatenate([a, i[i < j]]), np.concatenate([b, j[i < j]])
        d = np.sqrt(((vecs[a] - vecs[b]) ** 2).sum(1))
        sim = fit_similarity(d, owners[a] == owners[b])
        self.store.set_meta({"threshold": threshold, "people_threshold": people_threshold, "similarity": sim.to_dict()})
        return {"threshold": threshold, "people_threshold": people_threshold, "similarity": sim.to_dict(),
                "faces": len(rows), "people": len(counts)}

    @_locked
    def stats(self) -> dict[str, int]:
        one = lambda q: int(self.db.execute(q).fetchone()[0])  # noqa: E731
        return {"photos": one("SELECT COUNT(*) FROM photos"), "faces": one("SELECT COUNT(*) FROM face_people"),
                "people": len(self.people(hidden=True)), "named": one("SELECT COUNT(*) FROM people WHERE name IS NOT NULL "
                                                                    "AND merged_into IS NULL"),
                "waiting": one("SELECT COUNT(*) FROM face_people WHERE person_id IS NULL")}
