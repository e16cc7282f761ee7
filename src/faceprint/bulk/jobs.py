"""The bulk jobs' shard tasks: align (MTCNN crops) and embed (detect → align → embed), each a picklable recipe.

A job builds its model once per worker (``setup``) and processes a shard with it (``run``): images are decoded in
threads ahead of the batched model work, outputs are written in threads behind it (without a per-file fsync:
the runner makes the whole shard durable before its record is written). A bad file never stops a shard: it
becomes a problem line of the shard's record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from faceprint.bulk.shards import Shard
from faceprint.data.images import ImageLoadError, load_rgb
from faceprint.faults import fault_point
from faceprint.io import atomic_path

__all__ = ["AlignJob", "EmbedJob", "RECIPE_KEY", "decoded_batches", "read_ahead", "write_embeddings"]

T = TypeVar("T")
RECIPE_KEY = "faceprint-align"  # the PNG text chunk of a crop that holds its recipe


def read_ahead(src: Path, files: Sequence[str], batch_size: int, pool: ThreadPoolExecutor, problems: list[dict[str, str]],
               load: Callable[[Path], T], ahead: int = 2) -> Iterator[list[tuple[str, T]]]:
    """Batches of (relative path, ``load(src / path)``), run by ``pool`` ``ahead`` batches in front of the caller; a file
    that cannot be read or decoded becomes an ``unreadable`` line of ``problems`` (in file order)."""

    def run(rel: str) -> T | Exception:
        try:
            return load(src / rel)
        except (ImageLoadError, OSError) as exc:
            return exc

    chunks = [files[i : i + batch_size] for i in range(0, len(files), batch_size)]
    queued: list[list[Future]] = [[pool.submit(run, f) for f in c] for c in chunks[:ahead]]
    for k, chunk in enumerate(chunks):
        futures = queued.pop(0)
        if k + ahead < len(chunks):
            queued.append([pool.submit(run, f) for f in chunks[k + ahead]])
        batch = []
        for rel, fut in zip(chunk, futures):
            got = fut.result()
            if isinstance(got, Exception):
                detail = got.strerror or str(got) if isinstance(got, OSError) and not isinstance(got, ImageLoadError) else str(got)
                problems.append({"path": str(src / rel), "issue": "unreadable", "detail": detail})
            else:
                batch.append((rel, got))
        yield batch


def decoded_batches(src: Path, files: tuple[str, ...], batch_size: int, pool: ThreadPoolExecutor,
                    problems: list[dict[str, str]]) -> Iterator[list[tuple[str, Image.Image]]]:
    """Batches of (relative path, RGB image), decoded two batches ahead; unreadable files go to ``problems``."""
    return read_ahead(src, files, batch_size, pool, problems, load_rgb)


@dataclass(frozen=True)
class AlignJob:
    """``faceprint align`` as shards: one PNG crop per source image, at the same relative path under ``dst``."""

    src: str
    dst: str
    image_size: int = 160
    margin: float = 32.0
    mode: str = "margin"
    policy: str = "largest"
    batch_size: int = 8
    min_face: float = 20.0
    weights: str | None = None
    png_level: int = 1  # zlib level of the crops: 1 is several times faster than 6 and about 10 % larger

    def setup(self) -> Any:
        from faceprint.align import MTCNN

        return MTCNN(self.weights, min_face_size=self.min_face)

    def output(self, rel: str) -> Path:
        return (Path(self.dst) / rel).with_suffix(".png")

    @property
    def recipe(self) -> str:
        """What the pixels of a crop depend on; each crop carries it (a PNG text chunk), so a rerun into the same
        folder with another recipe redoes the crops made with the old one instead of mixing the two."""
        return json.dumps({"image_size": self.image_size, "margin": self.margin, "mode": self.mode,
                           "policy": self.policy, "min_face": self.min_face, "weights": self.weights}, sort_keys=True)

    def run(self, mtcnn: Any, shard: Shard, pool: ThreadPoolExecutor) -> dict[str, Any]:
        from faceprint.align.detect import Detections
        from faceprint.align.detect import choose_face

        problems: list[dict[str, str]] = []
        writes: list[Future] = []
        _remove_leftovers([self.output(rel) for rel in shard.files])  # temp files of a run killed in this shard
        # whole crops of earlier runs with this recipe are kept
        todo = tuple(rel for rel in shard.files if not _whole_png(self.output(rel), self.recipe))
        for batch in decoded_batches(Path(self.src), todo, self.batch_size, pool, problems):
            dets = mtcnn.detect([img for _, img in batch]) if batch else []
            for (rel, img), det in zip(batch, dets):
                k = choose_face(det, img.size, self.policy)  # type: ignore[arg-type]
                if k is None:
                    problems.append({"path": str(Path(self.src) / rel), "issue": "no_face" if len(det) == 0 else "several_faces",
                                     "detail": f"{len(det)} faces"})
                    continue
                one = Detections(det.boxes[k : k + 1], det.probs[k : k + 1], det.landmarks[k : k + 1])
                crop = mtcnn.crop(img, one, self.mode, self.image_size, self.margin)[0]
                writes.append(pool.submit(self._save, crop, self.output(rel)))
        for w in writes:
            w.result()
        made = {Path(w.result()) for w in writes}
        for rel in todo:  # a crop of another recipe that this one makes no crop for (no face, skipped) must not stay
            if self.output(rel) not in made:
                self.output(rel).unlink(missing_ok=True)
        return {"written": len(writes), "skipped_existing": len(shard.files) - len(todo),
                "outputs": [str(w.result()) for w in writes], "problems": problems}

    def _save(self, crop: Image.Image, out: Path) -> Path:
        with atomic_path(out, durable=False) as tmp:
            from PIL import PngImagePlugin

            info = PngImagePlugin.PngInfo()
            info.add_text(RECIPE_KEY, self.recipe)
            crop.save(tmp, format="PNG", compress_level=self.png_level, pnginfo=info)
            fault_point("bulk.write")  # a crop half-way to its place
        return out


@dataclass(frozen=True)
class EmbedJob:
    """``faceprint embed`` as shards: each shard's embeddings and paths in ``<dst>/<name>.npz``, merged at the end
    into ``<prefix>.npy`` and ``<prefix>.csv`` (``dst`` defaults to ``<prefix>.shards``)."""

    src: str
    prefix: str
    model: dict[str, Any]  # an Embedder spec: {"weights": name} or {"checkpoint": path}, + "backend"
    align: str = "auto"  # auto (as the model expects), mtcnn, none
    flip: bool = False
    batch_size: int = 32
    image_size: int | None = None  # another input size for a checkpoint's network (default: its own)
    model_id: str = ""  # the model's fingerprint: in the recipe hash, so new weights under an old name start afresh

    @property
    def dst(self) -> str:
        return f"{self.prefix}.shards"

    def setup(self) -> Any:
        from faceprint.models import Embedder, face_embedder

        emb = Embedder.from_spec(self.model)
        if self.image_size and self.image_size != emb.image_size and emb.model is not None:
            emb = Embedder(emb.model, self.image_size, emb.name, emb.backend, emb.preprocess, emb.align)
        detect = {"auto": None, "mtcnn": True, "none": False}[self.align]
        return face_embedder(emb, detect=detect)

    def run(self, faces: Any, shard: Shard, pool: ThreadPoolExecutor) -> dict[str, Any]:
        from faceprint.models.embed import flip_combine

        src = Path(self.src)
        problems: list[dict[str, str]] = []

        def batches() -> Iterator[tuple[int, list[Image.Image], list[Path]]]:  # decoded in threads, as align does
            for batch in decoded_batches(src, shard.files, self.batch_size, pool, problems):
                yield 0, [img for _, img in batch], [src / rel for rel, _ in batch]

        plain, mirrored, ok, _ = faces.embed_views([], batches=batches())  # a fusion too (one crop per member)
        rows = [(flip_combine(plain, mirrored) if self.flip else plain).float().numpy()] if ok else []
        names = [p.relative_to(src).as_posix() for p in ok]
        fallbacks = [p.relative_to(src).as_posix() for p in faces.no_face]
        dim = faces.embedder.dim * (2 if self.flip else 1)
        vectors = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
        out = self._part(shard)
        _remove_leftovers([out])
        with atomic_path(out, durable=False) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, vectors=vectors.astype(np.float32), paths=np.array(names, dtype=str))
        problems += [{"path": str(src / rel), "issue": "no_face", "detail": "centre crop embedded"} for rel in fallbacks]
        return {"written": len(names), "outputs": [str(out)], "problems": problems}

    def _part(self, shard: Shard) -> Path:
        from faceprint.bulk.shards import state_dir

        return state_dir(self) / f"{shard.name}.npz"  # beside its record: another recipe never reads it

    def finish(self, shards: list[Shard]) -> None:
        """Merge the shards' arrays, in manifest order, into ``<prefix>.npy`` and ``<prefix>.csv``."""
        vectors, paths = [], []
        for shard in shards:
            with np.load(self._part(shard)) as z:
                vectors.append(z["vectors"])
                paths += [str(Path(self.src) / p) for p in z["paths"]]
        if not paths:
            return  # nothing embedded: an existing PREFIX.npy is left as it is
        write_embeddings(self.prefix, np.concatenate(vectors), paths)


def write_embeddings(prefix: str | Path, vectors: np.ndarray, paths: Sequence[str | Path]) -> None:
    """``PREFIX.npy`` (N×D float32) and ``PREFIX.csv`` (index, path: row i is embedding i), each written atomically."""
    import csv
    import io

    from faceprint.io import atomic_write_text

    with atomic_path(f"{prefix}.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(vectors, np.float32))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["index", "path"])
    writer.writerows([i, str(p)] for i, p in enumerate(paths))
    atomic_write_text(f"{prefix}.csv", buf.getvalue())


def _remove_leftovers(outputs: list[Path]) -> None:
    """Delete the temporary files atomic writes of ``outputs`` left behind when killed (``.<name>.<random>.tmp``)."""
    by_folder: dict[Path, set[str]] = {}
    for out in outputs:
        by_folder.setdefault(out.parent, set()).add(out.name)
    for folder, names in by_folder.items():
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                if p.name[1:].rsplit(".", 2)[0] in names:
                    p.unlink(missing_ok=True)


def _whole_png(path: Path, recipe: str) -> bool:
    """A crop an earlier run with ``recipe`` finished: present, not empty, a PNG that ends with its IEND chunk (a file
    renamed into place but lost in a crash before the shard's sync can come back empty or cut) and carries the
    recipe (crops of another recipe, or of a version that did not record it, are made again)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            fh.seek(-12, 2)
            tail = fh.read(12)
        if head != b"\x89PNG\r\n\x1a\n" or tail[4:8] != b"IEND":
            return False
        with Image.open(path) as im:  # text chunks before the image data are parsed on open
            return im.info.get(RECIPE_KEY) == recipe
    except (OSError, SyntaxError, ValueError):
        return False
