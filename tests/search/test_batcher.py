"""Micro-batching: requests queued together run as one detection and one forward, with the answers they would get alone."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.models import Embedder, face_embedder
from faceprint.models.pipeline import FaceEmbedder
from faceprint.serve.batcher import ModelBatcher

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


class Gate(FaceEmbedder):
    """A pipeline whose first detection waits until released: jobs queued meanwhile must form one batch."""

    def __init__(self, inner: FaceEmbedder, fail_on: Image.Image | None = None) -> None:
        self.inner, self.fail_on = inner, fail_on
        self.embedder, self.mtcnn = inner.embedder, inner.mtcnn
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls: list[int] = []  # images per crops_many call
        self.forwards: list[int] = []  # faces per embedding forward

    def crops_many(self, images, all_faces=True):  # type: ignore[no-untyped-def]
        self.calls.append(len(images))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(30)
        if self.fail_on is not None and any(im is self.fail_on for im in images):
            raise ValueError("a broken image")
        return self.inner.crops_many(images, all_faces)

    def embed_crops(self, crops):  # type: ignore[no-untyped-def]
        self.forwards.append(len(crops))
        return self.inner.embed_crops(crops)


@pytest.fixture()
def lfw_photos() -> list[Image.Image]:
    photos = sorted((SHARED / "lfw" / "images").rglob("*.jpg"))[:7]
    if not photos:
        pytest.skip("needs ../shared/data/lfw")
    return [Image.open(p).convert("RGB") for p in photos]


@pytest.fixture()
def pipeline(tiny_weights: str) -> FaceEmbedder:
    return face_embedder(Embedder.from_pretrained(tiny_weights), detect=True)


def test_crops_many_equals_image_by_image(pipeline: FaceEmbedder, lfw_photos: list[Image.Image]) -> None:
    flags = [True, False, True, True, False, True, True]
    together = pipeline.crops_many(lfw_photos, flags)
    assert sum(len(c) for c in together) > len(lfw_photos) // 2  # real detections, not empty lists
    for image, flag, batch in zip(lfw_photos, flags, together):
        alone = pipeline.crops(image, all_faces=flag)
        assert [c.box for c in batch] == [c.box for c in alone]
        assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(batch, alone))
        assert flag or len(batch) <= 1


def test_queued_requests_run_as_one_batch_with_the_answers_they_get_alone(pipeline: FaceEmbedder,
                                                                          lfw_photos: list[Image.Image]) -> None:
    gate = Gate(pipeline)
    batcher = ModelBatcher(gate, max_batch=32, window_ms=0)
    first = batcher.submit(lfw_photos[0])
    assert gate.entered.wait(30)  # the model thread is busy with the first request ...
    rest = [batcher.submit(im) for im in lfw_photos[1:]]  # ... while six more arrive
    gate.release.set()
    results = [f.result(60) for f in [first, *rest]]
    batcher.close()
    assert gate.calls == [1, 6]  # the six waiting requests: one MTCNN call ...
    assert gate.forwards[1] == sum(len(c) for c, _, _ in results[1:])  # ... and one forward over all their faces
    assert (batcher.stats.batches, batcher.stats.largest) == (2, 6)
    for image, (crops, vecs, _) in zip(lfw_photos, results):
        alone = pipeline.crops(image)
        assert [c.box for c in crops] == [c.box for c in alone]
        assert vecs.shape == (len(alone), 16)
        np.testing.assert_allclose(vecs, pipeline.embed_crops(alone), atol=1e-5)


def test_batching_off_runs_one_request_per_forward(pipeline: FaceEmbedder, lfw_photos: list[Image.Image]) -> None:
    gate = Gate(pipeline)
    batcher = ModelBatcher(gate, max_batch=1)
    futures = [batcher.submit(lfw_photos[0])]
    assert gate.entered.wait(30)
    futures += [batcher.submit(im) for im in lfw_photos[1:4]]
    gate.release.set()
    [f.result(60) for f in futures]
    batcher.close()
    assert gate.calls == [1, 1, 1, 1] and batcher.stats.largest == 1


def test_a_failing_image_fails_only_its_own_request(pipeline: FaceEmbedder, lfw_photos: list[Image.Image]) -> None:
    bad = lfw_photos[3]
    gate = Gate(pipeline, fail_on=bad)
    batcher = ModelBatcher(gate, window_ms=0)
    first = batcher.submit(lfw_photos[0])
    assert gate.entered.wait(30)
    futures = [batcher.submit(im) for im in lfw_photos[1:5]]
    gate.release.set()
    first.result(60)
    for image, future in zip(lfw_photos[1:5], futures):
        if image is bad:
            with pytest.raises(ValueError, match="broken"):
                future.result(60)
        else:
            assert [c.box for c in future.result(60)[0]] == [c.box for c in pipeline.crops(image)]
    batcher.close()
    assert gate.calls[:2] == [1, 4]  # the batch of four failed as a whole, then each ran alone
    assert sorted(gate.calls[2:]) == [1, 1, 1, 1]


def test_the_window_is_waited_only_under_load(pipeline: FaceEmbedder, lfw_photos: list[Image.Image]) -> None:
    """Idle: a lone request starts at once (one 0.3 s later gets its own batch). Busy (the last batch held several):
    the model thread waits up to the window, so a request 0.3 s later joins the waiting one."""
    import time

    gate = Gate(pipeline)
    batcher = ModelBatcher(gate, window_ms=2000)
    first = batcher.submit(lfw_photos[0])  # idle: runs alone, at once (gated until released)
    assert gate.entered.wait(30)
    gate.release.set()
    first.result(60)
    lone = batcher.submit(lfw_photos[1])
    time.sleep(0.3)
    late = batcher.submit(lfw_photos[2])
    lone.result(60), late.result(60)
    assert gate.calls == [1, 1, 1]  # no window while idle
    gate.release.clear()
    gate.entered.clear()
    gate.calls[:] = []  # gate the next batch again: two requests queue behind it and run as one (busy from then on)
    held = batcher.submit(lfw_photos[0])
    assert gate.entered.wait(30)
    pair = [batcher.submit(im) for im in lfw_photos[1:3]]
    gate.release.set()
    [f.result(60) for f in [held, *pair]]
    t0 = time.monotonic()
    waiting = batcher.submit(lfw_photos[3])
    time.sleep(0.3)
    joined = batcher.submit(lfw_photos[4])
    waiting.result(60), joined.result(60)
    batcher.close()
    assert gate.calls == [1, 2, 2] and time.monotonic() - t0 < 10  # the window gathered the late request


def test_close_finishes_queued_jobs_and_refuses_new_ones(pipeline: FaceEmbedder, lfw_photos: list[Image.Image]) -> None:
    batcher = ModelBatcher(pipeline)
    futures = [batcher.submit(im) for im in lfw_photos[:3]]
    batcher.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(RuntimeError, match="stopped"):
        batcher.submit(lfw_photos[0])


def test_a_pixel_budget_splits_batches_of_large_photos(pipeline: FaceEmbedder, lfw_photos: list[Image.Image]) -> None:
    gate = Gate(pipeline)
    batcher = ModelBatcher(gate, window_ms=0, max_pixels=3 * 250 * 250)  # LFW photos are 250 × 250
    first = batcher.submit(lfw_photos[0])
    assert gate.entered.wait(30)
    rest = [batcher.submit(im) for im in lfw_photos[1:]]
    gate.release.set()
    results = [f.result(60) for f in [first, *rest]]
    batcher.close()
    assert gate.calls == [1, 3, 3]  # six waiting photos in batches of at most three, none lost or run twice
    for image, (crops, _, _) in zip(lfw_photos, results):
        assert [c.box for c in crops] == [c.box for c in pipeline.crops(image)]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dying_model_thread_fails_its_requests_instead_of_hanging(pipeline: FaceEmbedder,
                                                                    lfw_photos: list[Image.Image]) -> None:
    class Dies(Gate):
        def crops_many(self, images, all_faces=True):  # type: ignore[no-untyped-def]
            super().crops_many(images, all_faces)
            raise SystemExit("the thread goes down")  # not an Exception: no per-image retry catches it

    gate = Dies(pipeline)
    batcher = ModelBatcher(gate, window_ms=0)
    first = batcher.submit(lfw_photos[0])
    assert gate.entered.wait(30)
    queued = [batcher.submit(im) for im in lfw_photos[1:3]]
    gate.release.set()
    for future in [first, *queued]:  # the running one and the queued ones all fail, within the timeout
        with pytest.raises(RuntimeError, match="model thread has stopped"):
            future.result(30)
    with pytest.raises(RuntimeError, match="stopped"):
        batcher.submit(lfw_photos[0])
