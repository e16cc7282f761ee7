"""The photo library's tables, kept in the face index's own SQLite database (its source of truth).

``photos``: one row per distinct photo content (sha256), with where it was first seen, its size and EXIF date.
``face_people``: for each indexed face its photo, its person (NULL: waiting or rejected) and how it got there —
``auto`` (an automatic step), ``user`` (named, moved, split or merged by the user) or ``rejected`` (the user said
"not this person"; the pairs are in ``rejections`` and no step ever puts the face back). A face the user split or
moved away from a person is recorded there too (``explicit = 0``): no automatic step puts it back either, but a
merge of the two people (the user undoing the split) may.
``people``: stable ids (never reused: AUTOINCREMENT; a merged person keeps its row with ``merged_into``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Face", "Person", "Photo", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    taken_at TEXT,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    hidden INTEGER NOT NULL DEFAULT 0,
    feature_face INTEGER,
    merged_into INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS face_people (
    face_id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL,
    person_id INTEGER,
    how TEXT NOT NULL DEFAULT 'auto',
    landmarks TEXT,
    prob REAL
);
CREATE INDEX IF NOT EXISTS face_people_person ON face_people(person_id);
CREATE INDEX IF NOT EXISTS face_people_photo ON face_people(photo_id);
CREATE TABLE IF NOT EXISTS rejections (
    face_id INTEGER NOT NULL,
    person_id INTEGER NOT NULL,
    explicit INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (face_id, person_id)
);
"""


@dataclass(frozen=True)
class Person:
    """One person: ``faces`` counts the faces assigned now; ``feature_face`` is the face id shown for them."""

    id: int
    name: str | None
    faces: int
    hidden: bool
    feature_face: int | None


@dataclass(frozen=True)
class Face:
    """One face of the library: its box in the photo and its person (None: waiting or rejected)."""

    id: int
    photo_id: int
    person_id: int | None
    how: str
    box: list[float] | None
    person_name: str | None = None


@dataclass(frozen=True)
class Photo:
    """One photo and its faces."""

    id: int
    path: str
    width: int
    height: int
    taken_at: str | None
    faces: tuple[Face, ...] = ()
