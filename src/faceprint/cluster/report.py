"""Cluster a photo collection: detect and embed every face, cluster, write an HTML contact sheet and a CSV."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.cluster.methods import cluster
from faceprint.cluster.metrics import cluster_metrics
from faceprint.data.images import ImageLoadError
from faceprint.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from faceprint.models.pipeline import FaceEmbedder, thumbnail
from faceprint.search.index import gallery_images

__all__ = ["ClusterReport", "cluster_photos"]


@dataclass
class ClusterReport:
    """Faces found, their cluster labels, problems, and metrics when the folders name identities."""

    paths: list[str] = field(default_factory=list)
    boxes: list[list[float] | None] = field(default_factory=list)
    identities: list[str | None] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    problems: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None


def cluster_photos(photos: str | Path, out: str | Path, faces: FaceEmbedder, threshold: float,
                   method: str = "agglomerative", progress: Callable[[int, int], None] | None = None,
                   runner: Any = None, spec: dict[str, Any] | None = None) -> ClusterReport:
    """Cluster every face under ``photos`` and write ``out/index.html``, ``clusters.csv``, ``summary.json``.

    ``runner`` (``faceprint.bulk.Runner``) with the model's ``spec`` (what its workers load): detect and embed on the
    bulk runner instead of in this process (the same faces, in the same order)."""
    out = Path(out)
    report = ClusterReport()
    if runner is not None and runner.spreads:
        from faceprint.bulk import drop_state

        vectors, thumbs, found = _faces_from_runner(Path(photos), out, faces, report, runner, spec or {}, progress)
        done = _finish(out, report, vectors, thumbs, faces, threshold, method)
        drop_state(found)  # the report is written: the shards are not needed to resume any more
        return done
    images = gallery_images(Path(photos), identities=True)  # folders label faces for the metrics only
    vectors, thumbs = [], []
    for n, (path, ident) in enumerate(images, 1):
        try:
            crops = faces.crops(faces.load(path), all_faces=True)
            if not crops:
                report.problems.append({"path": str(path), "issue": "no_face", "detail": "no face detected"})
        except ImageLoadError as exc:
            report.problems.append({"path": str(path), "issue": "unreadable", "detail": str(exc)})
            crops = []
        for crop, vec in zip(crops, faces.embed_crops(crops)):
            report.paths.append(str(path))
            report.boxes.append(crop.box)
            report.identities.append(ident)
            vectors.append(vec)
            thumbs.append(thumbnail(crop.image, 80))
        if progress is not None:
            progress(n, len(images))
    return _finish(out, report, vectors, thumbs, faces, threshold, method)


def _faces_from_runner(photos: Path, out: Path, faces: FaceEmbedder, report: ClusterReport, runner: Any,
                       spec: dict[str, Any], progress: Callable[[int, int], None] | None) -> tuple[list[np.ndarray], list[bytes], Any]:
    """Every face of ``photos`` from the bulk runner, in the one-process order, into ``report``."""
    from faceprint.bulk import faces_of_photos, model_of, usable

    images = gallery_images(photos, identities=True)
    found = faces_of_photos([p for p, _ in images], model_of(spec), faces, runner, out / ".bulk",
                            root=photos.resolve() if photos.is_dir() else None, thumb_size=80, progress=progress)
    vectors, thumbs = [], []
    for path, ident in images:
        got = usable(found, path, report.problems)
        for row in range(len(got.vectors) if got is not None else 0):
            report.paths.append(str(path))
            report.boxes.append(got.boxes[row])
            report.identities.append(ident)
            vectors.append(got.vectors[row])
            thumbs.append(got.thumbs[row])
    return vectors, thumbs, found


def _finish(out: Path, report: ClusterReport, vectors: list[np.ndarray], thumbs: list[bytes], faces: FaceEmbedder,
            threshold: float, method: str) -> ClusterReport:
    x = np.stack(vectors) if vectors else np.zeros((0, faces.embedder.dim), np.float32)
    report.labels = cluster(x, threshold, method) if len(x) else np.zeros(0, int)
    if report.identities and all(i is not None for i in report.identities):
        report.metrics = cluster_metrics(np.array(report.identities), report.labels)
    _write(out, report, thumbs, method, threshold)
    return report


def _write(out: Path, report: ClusterReport, thumbs: list[bytes], method: str, threshold: float) -> None:
    for i, data in enumerate(thumbs):
        atomic_write_bytes(out / "thumbs" / f"{i}.jpg", data)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["face", "cluster", "path", "box", "folder"])
    for i, (p, b, ident, c) in enumerate(zip(report.paths, report.boxes, report.identities, report.labels)):
        writer.writerow([i, int(c), p, " ".join(f"{v:.0f}" for v in b) if b else "", ident or ""])
    atomic_write_text(out / "clusters.csv", buf.getvalue())
    sizes = np.bincount(report.labels) if len(report.labels) else np.zeros(0, int)
    order = np.argsort(-sizes, kind="stable")
    sections = []
    for c in order:
        members = np.flatnonzero(report.labels == c)
        title = f'cluster {int(c)} · {len(members)} face{"s" if len(members) != 1 else ""}'

        def cells(prefix: str, members: np.ndarray = members) -> str:
            return "".join(f'<figure><img src="{prefix}thumbs/{i}.jpg" alt="" loading="lazy"><figcaption>'
                           f"{html.escape(Path(report.paths[i]).name)}</figcaption></figure>" for i in members)

        sections.append(f'<section><h2><a href="clusters/{int(c)}.html">{title}</a></h2>'
                        f'<div class="sheet">{cells("")}</div></section>')
        rows = "".join(f"<tr><td>{i}</td><td>{html.escape(report.paths[i])}</td></tr>" for i in members)
        atomic_write_text(out / "clusters" / f"{int(c)}.html", _page(title, f'<p><a href="../index.html">all clusters</a></p>'
                          f'<div class="sheet">{cells("../")}</div><table>{rows}</table>'))
    metrics = ""
    if report.metrics:
        metrics = "<p>" + " · ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in report.metrics.items()) + "</p>"
    body = (f"<p>method {html.escape(method)}, threshold {threshold:.3f} (squared L2); {len(report.problems)} images "
            f"without a usable face</p>{metrics}{''.join(sections)}")
    page = _page(f"{len(sizes)} clusters of {len(report.labels)} faces", body)
    atomic_write_text(out / "index.html", page)
    atomic_write_json(out / "summary.json", {"method": method, "threshold": threshold, "faces": len(report.labels),
                                             "clusters": int(len(sizes)), "metrics": report.metrics,
                                             "problems": report.problems})


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>faceprint: {html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}} h2{{font-size:1rem;margin:1.2rem 0 .4rem}}
.sheet{{display:flex;flex-wrap:wrap;gap:.4rem}} figure{{margin:0;width:84px;font-size:.65rem;overflow:hidden}}
img{{width:80px;height:80px;border-radius:4px}} td{{font-size:.8rem;padding:0 .5rem}}</style></head>
<body><h1>{html.escape(title)}</h1>{body}</body></html>"""
