"""The decision thresholds that depend on the model, measured per model (never copied from another one).

``verdict``: the squared L2 distance under which search says "same person" (FAR 1e-3 on LFW's 3,000 different
pairs). ``people``: under which a face joins a person (stricter: each new face meets every person; casia-webface's
is the best final F1 of the people benchmark, about FAR 4e-4). ``similarity``: CompreFace's c0/c1 mapping a
distance to [0, 1] (casia-webface: CompreFace's published pair; the others fitted on LFW's pairs by
``benchmarks/lfw.py``). A fusion gets its members' thresholds weighted as its distances are (Σ wᵢ·tᵢ; on LFW that
keeps FAR under 1e-3 for every fusion measured) and a similarity anchored at its threshold. A library or index
calibrated on its own named people overrides all of these. The values were measured on the shared grayscale LFW;
a colour gallery that can be calibrated should be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ModelThresholds", "MODEL_THRESHOLDS", "thresholds_for"]

# benchmarks/lfw.py, benchmarks/results/lfw.json "thresholds" (LFW's 6,000 pairs, MTCNN, no flip; rounded down)
SFACE_VERDICT, SFACE_PEOPLE = 1.3237, 1.2974
DLIB_VERDICT, DLIB_PEOPLE = 0.1477, 0.1314


@dataclass(frozen=True)
class ModelThresholds:
    """One model's measured thresholds (squared L2 on unit vectors, no flip) and where they came from."""

    verdict: float
    people: float
    c0: float | None  # None: no fitted curve (a fusion); the similarity is anchored at the threshold
    c1: float | None
    source: str


MODEL_THRESHOLDS: dict[str, ModelThresholds] = {
    # 0.95: FAR 6.7e-4 on LFW here (TAR 0.916; its FAR 1e-3 point is 1.0165), kept as the search verdict it has been;
    # 0.85: the people benchmark's best final F1; c0/c1: CompreFace's published pair for this very model
    "casia-webface": ModelThresholds(0.95, 0.85, 1.1362496, 5.803152427,
                                     "verdict 0.95 (LFW FAR 6.7e-4); people: people benchmark; c0/c1: CompreFace"),
    # benchmarks/lfw.py (benchmarks/results/lfw.json "thresholds"): LFW's 6,000 pairs through MTCNN, no flip
    "sface": ModelThresholds(SFACE_VERDICT, SFACE_PEOPLE, 1.161254, 20.900534,
                             "LFW FAR 1e-3 (verdict) and 4e-4 (join); c0/c1 fitted on LFW"),
    "dlib-resnet": ModelThresholds(DLIB_VERDICT, DLIB_PEOPLE, 0.431475, 35.615765,
                                   "LFW FAR 1e-3 (verdict) and 4e-4 (join); c0/c1 fitted on LFW"),
}


def thresholds_for(weights: str | None) -> ModelThresholds | None:
    """The measured thresholds of a named model or of a fusion of measured models (``a+b``, ``a:0.3+b:0.7``), or
    None (a checkpoint or an unmeasured import)."""
    if not weights:
        return None
    if weights in MODEL_THRESHOLDS:
        return MODEL_THRESHOLDS[weights]
    if "+" not in weights:
        return None
    from faceprint.models.fusion import fusion_members

    try:
        members = fusion_members(weights)
    except ValueError:
        return None
    if any(n not in MODEL_THRESHOLDS for n, _ in members):
        return None
    verdict = sum(w * MODEL_THRESHOLDS[n].verdict for n, w in members)
    people = sum(w * MODEL_THRESHOLDS[n].people for n, w in members)
    down = lambda t: math.floor(t * 1e4) / 1e4  # noqa: E731 - rounded down like the measured values
    return ModelThresholds(down(verdict), down(people), None, None, f"weighted from its members: {weights}")
