"""``align_folder``: detect and crop every image of an identity-folder tree on the bulk runner, resumable and never
aborting (``faceprint align``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from faceprint.align.detect import Policy
from faceprint.align.mtcnn import MTCNN
from faceprint.bulk.jobs import AlignJob
from faceprint.bulk.runner import run_job
from faceprint.io import atomic_write_json, atomic_write_text

__all__ = ["AlignReport", "align_folder"]


@dataclass
class AlignReport:
    """What an alignment run did, per image: written, already done, or why not."""

    written: int = 0
    skipped_existing: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)  # path, issue (no_face / several_faces / unreadable)
    seconds: float = 0.0

    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


def align_folder(
    src: str | Path, dst: str | Path, mtcnn: MTCNN | None = None, image_size: int = 160, margin: float = 32,
    mode: Literal["margin", "similarity"] = "margin", policy: Policy = "largest", batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None, engine: str = "local", workers: int = 1,
    shard_size: int = 256, ray_address: str | None = None, min_face: float = 20.0, weights: str | None = None,
) -> AlignReport:
    """Write one aligned PNG per source image into ``dst`` (same relative layout, ``.png`` suffix).

    Runs on the bulk runner (faceprint.bulk): shards of ``shard_size`` images, decoding and writing in threads
    around batched detection, ``workers`` processes or a Ray cluster (``engine="ray"``). Finished shards and
    existing crops are skipped, so a rerun resumes; writes are atomic, so a kill leaves no partial file. Images
    with no face, several faces (under the ``skip`` policy) or unreadable data are listed in
    ``dst/align_report.json`` and ``.csv``; none of them stops the run. ``mtcnn`` (one-process engine only)
    reuses a built detector; otherwise each worker builds one from ``weights`` and ``min_face``.
    """
    if mtcnn is not None:
        min_face = mtcnn.min_face_size
    job = AlignJob(str(src), str(dst), image_size, float(margin), mode, policy, batch_size, float(min_face),
                   None if weights is None else str(weights))
    Path(dst).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(dst) / "align_recipe.json", job.recipe + "\n")  # for people; each crop carries it too
    bulk = run_job(job, engine, workers, shard_size, on_progress, ray_address, model=mtcnn)
    now = [r for r in bulk.records if r["shard"] in bulk.ran]
    skipped = sum(r["written"] + r["skipped_existing"] for r in bulk.records if r["shard"] not in bulk.ran) + sum(
        r["skipped_existing"] for r in now)
    report = AlignReport(written=bulk.written, skipped_existing=skipped, problems=bulk.problems, seconds=bulk.seconds)
    _write_report(Path(dst), report)
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
