"""NMS in blocks gives exactly what one N×N pass gives, and both what a plain greedy loop gives."""

from __future__ import annotations

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
