"""NMS in blocks gives exactly what one N×N pass gives, and both what a plain greedy loop gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceprint.align.nms import nms


def _greedy(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str) -> list[int]:
    """The textbook loop: take the best remaining box, drop every box overlapping it past the threshold."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep, dead = [], set()
    for pos, i in enumerate(order):
        if i in dead:
            continue
        keep.append(i)
        for j in order[pos + 1 :]:
            xx1, yy1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            xx2, yy2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            ai = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            aj = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            denom = min(ai, aj) if mode == "min" else ai + aj - inter
            if inter / denom > threshold:
                dead.add(j)
    return keep


@pytest.mark.parametrize("mode", ["union", "min"])
def test_blocks_equal_one_pass_and_the_greedy_loop(mode: str) -> None:
    rng = np.random.default_rng(0)
    xy = rng.integers(0, 200, (600, 2)).astype(np.float32)
    wh = rng.integers(8, 60, (600, 2)).astype(np.float32)
    boxes = torch.from_numpy(np.concatenate([xy, xy + wh], axis=1))
    scores = torch.from_numpy(rng.integers(0, 50, 600).astype(np.float32))  # many ties
    whole = nms(boxes, scores, 0.4, mode, block=10**9)
    for block in (1, 7, 64, 599):
        assert torch.equal(nms(boxes, scores, 0.4, mode, block=block), whole), block
    assert whole.tolist() == _greedy(boxes.double().numpy(), scores.numpy(), 0.4, mode)


def test_detection_in_pixel_groups_equals_one_call() -> None:
    """MTCNN takes a batch in groups of at most max_pixels (memory); the answers are those of one call, in order."""
    from PIL import Image

    from faceprint.align.mtcnn import MTCNN, _by_pixels, _pixels

    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in ((120, 90), (64, 200), (300, 240))]
    gray = rng.integers(0, 255, (200, 150), dtype=np.uint8)
    chw = torch.from_numpy(rng.integers(0, 255, (3, 80, 100)).astype(np.float32))
    batch = [*images, gray, chw]
    assert [_pixels(im) for im in batch] == [10800, 12800, 72000, 30000, 8000]
    assert [len(g) for g in _by_pixels(batch, 30_000)] == [2, 1, 1, 1]  # an image over the budget goes alone
    group = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples" / "multiface.jpg"
    if group.is_file():  # real faces between the noise images, so the comparison is of found faces, not of none
        batch.insert(2, Image.open(group).convert("RGB"))
    m = MTCNN()
    whole = m.detect(batch)
    assert not group.is_file() or sum(len(d) for d in whole) >= 6
    m.max_pixels = 1  # every image alone
    alone = m.detect(batch)
    assert len(whole) == len(alone) == len(batch)
    for a, b in zip(whole, alone):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
