"""The decision thresholds that depend on the model, measured per model (never copied from another one).

``verdict``: the squared L2 distance under which search says "same person" (FAR 1e-3 on LFW's 3,000 different
pairs). ``people``: under which a face joins a person (stricter: each new face meets every person; casia-webface's
is the best final F1 of the people benchmark, about FAR 4e-4). ``similarity``: CompreFace's c0/c1 mapping a
distance to [0, 1] (casia-webface: CompreFace's published pair; the others fitted on LFW's pairs by
``benchmarks/lfw.py``). A library or index calibrated on its own named people overrides all three.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelThresholds", "MODEL_THRESHOLDS", "thresholds_for"]


@dataclass(frozen=True)
class ModelThresholds:
    """One model's measured thresholds (squared L2 on unit vectors, no flip) and where they came from."""

    verdict: float
    people: float
    c0: float
    c1: float
    source: str


MODEL_THRESHOLDS: dict[str, ModelThresholds] = {
    "casia-webface": ModelThresholds(0.95, 0.85, 1.1362496, 5.803152427,
                                     "verdict: LFW FAR 1e-3 (0.94); people: people benchmark; c0/c1: CompreFace"),
    # benchmarks/lfw.py (benchmarks/results/lfw.json "thresholds"): LFW's 6,000 pairs through MTCNN, no flip
    "sface": ModelThresholds(1.32, 1.30, 1.161254, 20.900534,
                             "LFW: FAR 1e-3 at 1.3238 (TAR 0.989), FAR 4e-4 at 1.2975 (TAR 0.987); c0/c1 fitted on LFW"),
    "dlib-resnet": ModelThresholds(0.148, 0.131, 0.431475, 35.615765,
                                   "LFW: FAR 1e-3 at 0.1478 (TAR 0.926), FAR 4e-4 at 0.1314 (TAR 0.853); c0/c1 fitted on LFW"),
}


def thresholds_for(weights: str | None) -> ModelThresholds | None:
    """The measured thresholds of a named model, or None (a fusion, a checkpoint or an unmeasured import)."""
    return MODEL_THRESHOLDS.get(weights or "")
