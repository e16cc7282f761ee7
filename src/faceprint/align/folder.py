"""``align_folder``: detect and crop every image of an identity-folder tree, resumable and never aborting."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from faceprint.align.detect import Detections
from faceprint.align.mtcnn import MTCNN
from faceprint.data.images import IMAGE_EXTENSIONS, ImageLoadError, load_rgb
from faceprint.io import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["AlignReport", "align_folder", "choose_face"]

Policy = Literal["largest", "center", "skip"]


@dataclass
class AlignReport:
    """What an alignment run did, per image: written, already done, or why not."""

    written: int = 0
    skipped_existing: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)  # path, issue (no_face / several_faces / unreadable)
    seconds: float = 0.0

    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


def choose_face(det: Detections, size: tuple[int, int], policy: Policy) -> int | None:
    """Index of the face to keep: the largest, the one nearest the image centre, or None when ambiguous."""
    if len(det) == 0 or (policy == "skip" and len(det) > 1):
        return None
    if policy == "center" and len(det) > 1:
        centres = (det.boxes[:, :2] + det.boxes[:, 2:4]) / 2
        return int(np.argmin(((centres - np.array(size) / 2) ** 2).sum(1)))
    return 0  # detections come largest first


def _sources(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def align_folder(
    src: str | Path, dst: str | Path, mtcnn: MTCNN, image_size: int = 160, margin: float = 32,
    mode: Literal["margin", "similarity"] = "margin", policy: Policy = "largest", batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
) -> AlignReport:
    """Write one aligned PNG per source image into ``dst`` (same relative layout, ``.png`` suffix).

    Finished files are skipped, so a rerun resumes; writes are atomic, so a kill leaves no partial
    file. Images with no face, several faces (under the ``skip`` policy) or unreadable data are listed
    in ``dst/align_report.json`` and ``.csv``; none of them stops the run.
    """
    src, dst = Path(src), Path(dst)
    files = _sources(src)
    report, t0 = AlignReport(), time.perf_counter()
    todo = []
    for f in files:
        out = (dst / f.relative_to(src)).with_suffix(".png")
        if out.exists():
            report.skipped_existing += 1
        else:
            todo.append((f, out))
    for i in range(0, len(todo), batch_size):
        batch, images = [], []
        for f, out in todo[i : i + batch_size]:
            try:
                images.append(load_rgb(f))
                batch.append((f, out))
            except ImageLoadError as exc:
                report.problems.append({"path": str(f), "issue": "unreadable", "detail": str(exc)})
        for (f, out), img, det in zip(batch, images, mtcnn.detect(images) if images else []):
            k = choose_face(det, img.size, policy)
            if k is None:
                report.problems.append({"path": str(f), "issue": "no_face" if len(det) == 0 else "several_faces",
                                        "detail": f"{len(det)} faces"})
                continue
            one = Detections(det.boxes[k : k + 1], det.probs[k : k + 1], det.landmarks[k : k + 1])
            crop: Image.Image = mtcnn.crop(img, one, mode, image_size, margin)[0]
            with atomic_path(out) as tmp:
                crop.save(tmp, format="PNG")
            report.written += 1
        if on_progress is not None:
            on_progress(min(i + batch_size, len(todo)), len(todo))
    report.seconds = time.perf_counter() - t0
    _write_report(dst, report)
    return report


def _write_report(dst: Path, report: AlignReport) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    atomic_write_json(dst / "align_report.json", {
        "written": report.written, "skipped_existing": report.skipped_existing, "seconds": round(report.seconds, 2),
        "images_per_s": round(report.images_per_second(), 2), "problems": report.problems,
    })
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["path", "issue", "detail"])
    writer.writeheader()
    writer.writerows(report.problems)
    atomic_write_text(dst / "align_report.csv", buf.getvalue())
