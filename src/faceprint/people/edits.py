"""The user's corrections: name, merge, split, move, "not this person", hide, dismiss, feature face.

Each is one transaction. What the user does is marked ``how = 'user'`` and no automatic step changes it; a
rejection is remembered per (face, person) and holds in every later step, merges included. Two faces of one
photo are never one person: an edit that would make them one is refused and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from faceprint.search.names import InvalidName, valid_name
from faceprint.search.store import IndexError_

__all__ = ["EditsMixin", "LibraryEditError", "LibraryInputError", "UnknownInLibraryError"]


class LibraryEditError(IndexError_):
    """An edit that cannot be done as asked (a name in use or malformed, two faces of one photo)."""


class UnknownInLibraryError(LibraryEditError):
    """No such person or face in this library."""


class LibraryInputError(LibraryEditError):
    """A malformed argument (a name that is empty, too long or holds '/' or a line break)."""


class EditsMixin:
    """Edits of a :class:`~faceprint.people.library.Library` (uses its ``db``, ``store`` and person helpers)."""

    db: Any
    store: Any

    # helpers -----------------------------------------------------------------------------------------
    def resolve(self, person: int) -> int:
        """The live id of ``person`` (a merged person's id leads to the one it was merged into)."""
        seen = set()
        pid = int(person)
        while True:
            row = self.db.execute("SELECT merged_into FROM people WHERE id = ?", (pid,)).fetchone()
            if row is None:
                raise UnknownInLibraryError(f"no person #{person}")
            if row[0] is None or pid in seen:
                return pid
            seen.add(pid)
            pid = int(row[0])

    def _face_rows(self, face_ids: Sequence[int]) -> dict[int, tuple[int, int | None]]:
        """face id → (photo id, person id) for faces of the library; unknown ids are refused."""
        ids = sorted({int(i) for i in face_ids})
        if not ids:
            raise LibraryEditError("no faces given")
        rows = {r[0]: (r[1], r[2]) for r in self.db.execute(
            "SELECT face_id, photo_id, person_id FROM face_people WHERE face_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))}
        missing = [i for i in ids if i not in rows]
        if missing:
            raise UnknownInLibraryError(f"no face {', '.join(f'#{i}' for i in missing[:10])} in this library")
        return rows

    def _check_photos(self, rows: dict[int, tuple[int, int | None]], person: int | None) -> None:
        """Refuse putting two faces of one photo into one person (the faces given, with ``person``'s others)."""
        photos = [ph for ph, _ in rows.values()]
        if len(set(photos)) < len(photos):
            raise LibraryEditError("two of these faces are in the same photo: they cannot be one person")
        if person is None:
            return
        clash = self.db.execute("SELECT photo_id FROM face_people WHERE person_id = ? AND photo_id IN (SELECT value FROM "
                                "json_each(?)) AND face_id NOT IN (SELECT value FROM json_each(?))",
                                (person, json.dumps(photos), json.dumps(list(rows)))).fetchone()
        if clash is not None:
            raise LibraryEditError(f"person #{person} already has another face in photo #{clash[0]}: two faces of one "
                                   "photo cannot be one person")

    def _fix_features(self, people: Sequence[int | None]) -> None:
        """A person whose feature face left them shows their first face instead."""
        for pid in {p for p in people if p is not None}:
            self.db.execute("UPDATE people SET feature_face = (SELECT MIN(face_id) FROM face_people WHERE person_id = :p) "
                            "WHERE id = :p AND (feature_face IS NULL OR feature_face NOT IN (SELECT face_id FROM "
                            "face_people WHERE person_id = :p))", {"p": pid})

    @staticmethod
    def valid_name(name: str) -> str:
        """``name`` stripped, or LibraryInputError when it breaks the one name rule (``search/names.py``)."""
        try:
            return valid_name(name)
        except InvalidName as exc:
            raise LibraryInputError(str(exc)) from None

    def _check_name(self, name: str, person: int | None) -> str:
        name = self.valid_name(name)
        other = self.db.execute("SELECT id FROM people WHERE name = ? AND merged_into IS NULL AND id IS NOT ?",
                                (name, person)).fetchone()
        if other is not None:
            raise LibraryEditError(f"{name!r} is already person #{other[0]}: merge the two, or move these faces to them")
        return name

    def _left(self, rows: dict[int, tuple[int, int | None]], to: int) -> None:
        """Faces the user took from their person into ``to``: no automatic step puts them back there."""
        self.db.executemany("INSERT OR IGNORE INTO rejections (face_id, person_id, explicit) VALUES (?, ?, 0)",
                            [(f, p) for f, (_, p) in rows.items() if p is not None and p != to])

    # edits -------------------------------------------------------------------------------------------
    def name(self, person: int, name: str) -> int:
        """Name or rename a person; returns its live id."""
        with self.store.transaction():
            pid = self.resolve(person)
            name = self._check_name(name, pid)
            self.db.execute("UPDATE people SET name = ? WHERE id = ?", (name, pid))
            self._sync_identities([pid])  # type: ignore[attr-defined]
        return pid

    def _aliases(self, person: int) -> list[int]:
        """``person`` and every person merged into it (directly or through others)."""
        rows = self.db.execute("WITH RECURSIVE m(id) AS (SELECT ? UNION SELECT p.id FROM people p JOIN m ON p.merged_into = m.id) "
                               "SELECT id FROM m", (person,)).fetchall()
        return [r[0] for r in rows]

    def merge(self, target: int, sources: Sequence[int]) -> int:
        """Merge ``sources`` into ``target`` (their ids lead to it from now on); returns the faces moved. A face the user
        rejected ("not this person") from any of them leaves the merged person (it waits): it was said not to be one
        of them, and they are now one. Faces split or moved between them come together again. Refused if the people
        share a photo."""
        with self.store.transaction():
            tid = self.resolve(target)
            sids = sorted({self.resolve(s) for s in sources} - {tid})
            if not sids:
                raise LibraryEditError("nothing to merge: give other people than the target")
            group = json.dumps(sorted({a for pid in (tid, *sids) for a in self._aliases(pid)}))
            faces = [r[0] for r in self.db.execute("SELECT face_id FROM face_people WHERE person_id IN (SELECT value FROM "
                                                   "json_each(?))", (json.dumps([tid, *sids]),))]
            target_faces = {r[0] for r in self.db.execute("SELECT face_id FROM face_people WHERE person_id = ?", (tid,))}
            refused = {r[0] for r in self.db.execute("SELECT face_id FROM rejections WHERE explicit = 1 AND person_id IN "
                                                     "(SELECT value FROM json_each(?))", (group,))}
            moving = [f for f in faces if f not in refused]
            if moving:
                self._check_photos(self._face_rows(moving), None)
            out = json.dumps([f for f in faces if f in refused])
            self.db.execute("UPDATE face_people SET person_id = ?, how = 'user' WHERE face_id IN (SELECT value FROM "
                            "json_each(?))", (tid, json.dumps(moving)))
            self.db.execute("UPDATE face_people SET person_id = NULL, how = 'rejected' WHERE face_id IN (SELECT value FROM "
                            "json_each(?))", (out,))
            self.db.execute("INSERT OR IGNORE INTO rejections SELECT face_id, ?, explicit FROM rejections WHERE person_id IN "
                            "(SELECT value FROM json_each(?))", (tid, group))
            self.db.execute("DELETE FROM rejections WHERE explicit = 0 AND face_id IN (SELECT value FROM json_each(?)) AND "
                            "person_id IN (SELECT value FROM json_each(?))", (json.dumps(moving), group))
            named = self.db.execute("SELECT name FROM people WHERE id = ?", (tid,)).fetchone()[0]
            if named is None:  # an unnamed target takes the first name among the sources
                row = self.db.execute("SELECT name FROM people WHERE id IN (SELECT value FROM json_each(?)) AND name IS NOT "
                                      "NULL ORDER BY id LIMIT 1", (json.dumps(sids),)).fetchone()
                if row is not None:
                    self.db.execute("UPDATE people SET name = ? WHERE id = ?", (row[0], tid))
            self.db.execute("UPDATE people SET merged_into = ?, name = NULL WHERE id IN (SELECT value FROM json_each(?))",
                            (tid, json.dumps(sids)))
            self._fix_features([tid])
            self._sync_identities([tid])  # type: ignore[attr-defined]
            self.db.execute("UPDATE faces SET identity = NULL WHERE id IN (SELECT value FROM json_each(?))", (out,))
        return len([f for f in moving if f not in target_faces])

    def split(self, face_ids: Sequence[int], name: str | None = None) -> int:
        """Make the given faces a new person (named ``name`` if given); returns its id. Their rejections stay."""
        with self.store.transaction():
            return self._split(face_ids, name)

    def _split(self, face_ids: Sequence[int], name: str | None) -> int:
        rows = self._face_rows(face_ids)
        self._check_photos(rows, None)
        if name is not None:
            name = self._check_name(name, None)
        ids = sorted(rows)
        vecs = self.store.unpack(r[0] for r in self.db.execute(
            "SELECT vector FROM faces WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id", (json.dumps(ids),)))
        pid = self._new_person(ids, vecs, how="user", name=name)  # type: ignore[attr-defined]
        self._left(rows, pid)
        self._fix_features([p for _, p in rows.values()])
        return pid

    def move(self, face_ids: Sequence[int], person: int) -> int:
        """Put faces into ``person`` (the user says so: their rejections from it, and from anyone merged into it, are
        lifted); returns its id."""
        with self.store.transaction():
            return self._move(face_ids, person)

    def _move(self, face_ids: Sequence[int], person: int) -> int:
        pid = self.resolve(person)
        rows = self._face_rows(face_ids)
        self._check_photos(rows, pid)
        ids = json.dumps(sorted(rows))
        self.db.execute("UPDATE face_people SET person_id = ?, how = 'user' WHERE face_id IN (SELECT value FROM json_each(?))",
                        (pid, ids))
        self.db.execute("DELETE FROM rejections WHERE person_id IN (SELECT value FROM json_each(?)) AND face_id IN (SELECT "
                        "value FROM json_each(?))", (json.dumps(self._aliases(pid)), ids))
        self._left(rows, pid)
        self._fix_features([pid, *(p for _, p in rows.values())])
        self._sync_identities([pid])  # type: ignore[attr-defined]
        return pid

    def name_faces(self, face_ids: Sequence[int], name: str) -> int:
        """Name a group of faces at once: they join the person of that name (shown again if hidden), or become a new
        person with it. Faces the user once took from that person stay out (a group is named as a whole; ``move`` a
        face to overrule)."""
        with self.store.transaction():
            return self._name_faces(face_ids, name)

    def _name_faces(self, face_ids: Sequence[int], name: str) -> int:
        name = self.valid_name(name)
        found = self.db.execute("SELECT id FROM people WHERE name = ? AND merged_into IS NULL", (name,)).fetchone()
        if found is None:
            return self._split(face_ids, name)
        refused = {r[0] for r in self.db.execute("SELECT face_id FROM rejections WHERE person_id IN (SELECT value FROM "
                                                 "json_each(?))", (json.dumps(self._aliases(found[0])),))}
        keep = [f for f in face_ids if int(f) not in refused]
        if not keep:
            raise LibraryEditError(f"every one of these faces was taken from {name!r} before")
        self.db.execute("UPDATE people SET hidden = 0 WHERE id = ?", (found[0],))
        return self._move(keep, found[0])

    def reject(self, face_ids: Sequence[int]) -> int:
        """"Not this person": the faces leave their person for good (no step puts them back); returns how many."""
        with self.store.transaction():
            rows = self._face_rows(face_ids)
            had = [(f, p) for f, (_, p) in rows.items() if p is not None]
            self.db.executemany("INSERT INTO rejections (face_id, person_id, explicit) VALUES (?, ?, 1) "
                                "ON CONFLICT (face_id, person_id) DO UPDATE SET explicit = 1", had)
            self.db.execute("UPDATE face_people SET person_id = NULL, how = 'rejected' WHERE face_id IN (SELECT value FROM "
                            "json_each(?))", (json.dumps([f for f, _ in had]),))
            self.db.execute("UPDATE faces SET identity = NULL WHERE id IN (SELECT value FROM json_each(?))",
                            (json.dumps([f for f, _ in had]),))
            self._fix_features([p for _, p in had])
        return len(had)

    def hide(self, person: int, hidden: bool = True) -> int:
        with self.store.transaction():
            pid = self.resolve(person)
            self.db.execute("UPDATE people SET hidden = ? WHERE id = ?", (int(hidden), pid))
        return pid

    def set_feature(self, person: int, face_id: int) -> int:
        with self.store.transaction():
            pid = self.resolve(person)
            if self.db.execute("SELECT 1 FROM face_people WHERE face_id = ? AND person_id = ?", (face_id, pid)).fetchone() is None:
                raise UnknownInLibraryError(f"face #{face_id} is not one of person #{pid}'s")
            self.db.execute("UPDATE people SET feature_face = ? WHERE id = ?", (face_id, pid))
        return pid

    def set_apart(self, face_ids: Sequence[int]) -> int:
        """Waiting faces the user says are not one person ("Not this group"): each waits alone from now on, never
        grouped, founding or joining anyone by itself (naming or moving them still works). Returns how many."""
        placed = [f for f, (_, person) in self._face_rows(face_ids).items() if person is not None]  # unknown: refused
        if placed:
            raise LibraryEditError(f"face #{placed[0]} has a person: take it out with \"Not this person\" instead")
        with self.store.transaction():
            return int(self.db.execute("UPDATE face_people SET how = 'apart' WHERE person_id IS NULL AND face_id IN "
                                       "(SELECT value FROM json_each(?))", (json.dumps(sorted({int(i) for i in face_ids})),)).rowcount)

    def dismiss(self, face_ids: Sequence[int]) -> int:
        """Detections that are not faces: removed from the library (their photo stays, so they never come back)."""
        self._face_rows(face_ids)  # unknown ids are refused before anything is written
        ids = sorted({int(i) for i in face_ids})

        def inside(found: list[int]) -> None:
            rows = self._face_rows(ids)  # read again inside the transaction: another writer may have moved them
            self.db.execute("DELETE FROM face_people WHERE face_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))
            self.db.execute("DELETE FROM rejections WHERE face_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))
            self._fix_features([p for _, p in rows.values()])

        return self.store.remove(ids=ids, inside=inside)
