"""What adding photos to a library gives: ``AddReport`` (``Detected``, what it takes, lives in ``models/photos.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AddReport"]


@dataclass
class AddReport:
    """What ``add_photos`` did."""

    photos: int = 0
    already: int = 0
    faces: int = 0
    joined: int = 0
    founded: int = 0  # new people
    retried: int = 0  # waiting faces that joined someone later
    problems: list[dict[str, str]] = field(default_factory=list)
    face_ids: list[int] = field(default_factory=list)  # the faces this add created

    def merge(self, other: AddReport) -> None:
        """Add the counts of a committed step."""
        for key in ("photos", "already", "faces", "joined", "founded", "retried"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.problems += other.problems
        self.face_ids += other.face_ids
