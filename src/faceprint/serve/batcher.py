"""Micro-batching of the server's model work: requests that arrive together are detected and embedded together.

One model thread owns the model (2 cores: running two forwards at once would only oversubscribe them). It takes
the oldest waiting job, then the jobs queued behind it (waiting up to ``window_ms`` for more; at most
``max_batch`` images and ``max_pixels`` pixels, so a burst of large photos is not held in memory as one batch), and
runs one batched MTCNN call over their images and one embedding forward over all their faces. A busy server
amortises each forward over many requests; the window is only waited when the last batch held several requests,
so a lone request on an idle server starts at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from faceprint.models.pipeline import FaceCrop, FaceEmbedder

__all__ = ["BatchStats", "ModelBatcher"]

Result = tuple[list[FaceCrop], np.ndarray, int]  # the largest faces (at most max_faces), their embeddings, faces found


@dataclass
class _Job:
    image: Image.Image
    all_faces: bool
    max_faces: int
    future: Future = field(default_factory=Future)


@dataclass(frozen=True)
class BatchStats:
    """What the model thread has done: batches run and the jobs in them (the largest batch too)."""

    batches: int = 0
    jobs: int = 0
    largest: int = 0


class ModelBatcher:
    """Runs ``faces`` for many requests at once. ``max_batch=1`` turns batching off (one request per forward)."""

    def __init__(self, faces: FaceEmbedder, max_batch: int = 32, window_ms: float = 2.0,
                 max_pixels: int = 4_000_000) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.faces, self.max_batch, self.window, self.max_pixels = faces, max_batch, window_ms / 1000, max_pixels
        self._held: _Job | None = None  # a job taken that did not fit the last batch: it opens the next one
        self._busy = False
        self._closing, self._closed = threading.Lock(), False
        self.stats = BatchStats()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="faceprint-model", daemon=True)
        self._thread.start()

    def submit(self, image: Image.Image, all_faces: bool = True, max_faces: int = 1_000_000) -> Future:
        """A future of (face crops largest first, their embeddings, faces found) for one RGB image: only the
        ``max_faces`` largest faces are embedded (a photo tiled with faces costs one bounded forward)."""
        with self._closing:
            if self._closed or not self._thread.is_alive():
                raise RuntimeError("the model thread has stopped")
            job = _Job(image, all_faces, max_faces)
            self._queue.put(job)
        return job.future

    async def run(self, image: Image.Image, all_faces: bool = True, max_faces: int = 1_000_000) -> Result:
        """``submit`` awaited from the event loop."""
        return await asyncio.wrap_future(self.submit(image, all_faces, max_faces))

    def close(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs and stop the model thread (later submits are refused)."""
        with self._closing:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
        first, self._held = self._held or self._queue.get(), None
        if first is None:
            return None
        # the window only under load (the last batch held several requests): a lone request on an idle server never waits
        batch, deadline = [first], time.monotonic() + (self.window if self._busy else 0.0)
        pixels = _pixels(first)
        while len(batch) < self.max_batch:
            try:
                wait = deadline - time.monotonic()
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # closing: run what was taken, then stop
                self._queue.put(None)
                break
            if pixels + _pixels(job) > self.max_pixels:
                self._held = job
                break
            batch.append(job)
            pixels += _pixels(job)
        self._busy = len(batch) > 1
        return batch

    def _serve(self) -> None:
        try:
            while (batch := self._take()) is not None:
                self._one_batch(batch)
        finally:  # however the thread ends, nobody waits forever: what is still queued fails
            with self._closing:
                self._closed = True
            leftovers = [self._held] if self._held is not None else []
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    leftovers.append(job)
            for job in leftovers:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(RuntimeError("the model thread has stopped"))

    def _one_batch(self, batch: list[_Job]) -> None:
        batch = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not batch:
            return
        st = self.stats  # replaced whole: a reader never sees a half-updated record
        self.stats = BatchStats(st.batches + 1, st.jobs + len(batch), max(st.largest, len(batch)))
        try:
            try:
                results = self._run(batch)
            except Exception:  # noqa: BLE001 - one bad image must not fail the others: run each alone
                results = []
                for job in batch:
                    try:
                        results.append(self._run([job])[0])
                    except Exception as exc:  # noqa: BLE001 - handed to the request that sent it
                        results.append(exc)
            for job, result in zip(batch, results):
                if isinstance(result, Exception):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
        except BaseException as exc:  # the thread itself is going down: the batch's requests fail, not hang
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(f"the model thread has stopped ({exc!r})"))
            raise

    def _run(self, batch: list[_Job]) -> list[Result]:
        found = self.faces.crops_many([j.image for j in batch], [j.all_faces for j in batch])
        crops = [faces[: j.max_faces] for faces, j in zip(found, batch)]  # largest first: the largest are kept
        vectors = self.faces.embed_crops([c for faces in crops for c in faces])  # one forward for every face
        out, start = [], 0
        for faces, every in zip(crops, found):
            out.append((faces, vectors[start : start + len(faces)], len(every)))
            start += len(faces)
        return out


def _pixels(job: _Job) -> int:
    return job.image.width * job.image.height
