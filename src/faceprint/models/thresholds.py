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
}


def thresholds_for(weights: str | None) -> ModelThresholds | None:
    """The measured thresholds of a named model, or None (a fusion, a checkpoint or an unmeasured import)."""
    return MODEL_THRESHOLDS.get(weights or "")
