"""Thresholds stored per model: an index or library of a model uses that model's measured values, a fusion its
members' weighted by its weights, and anything unmeasured the generic default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.models.thresholds import MODEL_THRESHOLDS, thresholds_for
from faceprint.people import open_library
from faceprint.search.index import DEFAULT_THRESHOLD
from tests.people.conftest import PatternNet


@pytest.mark.parametrize("weights", ["sface", "dlib-resnet", "casia-webface", "pattern", "sface+dlib-resnet"])
def test_a_library_uses_its_models_thresholds(tmp_path: Path, weights: str) -> None:
    lib = open_library(tmp_path / "lib", {"weights": weights}, embedder=PatternNet.embedder(), detect=False)
    measured = thresholds_for(weights)
    if weights == "pattern":  # unmeasured: the index's generic verdict, and a similarity anchored there
        assert measured is None and lib.index.threshold == DEFAULT_THRESHOLD == lib.threshold
        assert lib.similarity().source == "threshold"
        return
    assert measured is not None
    assert lib.index.threshold == measured.verdict and lib.threshold == measured.people
    sim = lib.similarity()
    if measured.c0 is None:  # a fusion: no fitted curve of its own
        assert sim.source == "threshold"
        stored = thresholds_for("sface:0.15+dlib-resnet:0.85")  # the form a fused library stores (below)
        assert stored is not None and (stored.verdict, stored.people) == (measured.verdict, measured.people)
    else:
        assert (sim.c0, sim.c1) == (measured.c0, measured.c1)
    lib.store.set_meta({"people_threshold": 0.5})  # a calibrated library overrides the model's value
    assert lib.threshold == 0.5


def test_values_differ_per_model_and_fusions_weigh_their_members() -> None:
    s, d, c = (MODEL_THRESHOLDS[n] for n in ("sface", "dlib-resnet", "casia-webface"))
    assert len({s.verdict, d.verdict, c.verdict}) == 3 and all(t.people < t.verdict for t in (s, d, c))
    fused = thresholds_for("sface+dlib-resnet")
    assert fused is not None and fused.verdict == pytest.approx(0.15 * s.verdict + 0.85 * d.verdict, abs=1e-4)
    swapped = thresholds_for("dlib-resnet+sface")  # the default weights are found in any order
    assert swapped is not None and (swapped.verdict, swapped.people) == (fused.verdict, fused.people)
    explicit = thresholds_for("sface:0.5+casia-webface:0.5")
    assert explicit is not None and explicit.people == pytest.approx(np.mean([s.people, c.people]), abs=1e-4)
    assert thresholds_for("sface+my-own-model") is None and thresholds_for(None) is None


@pytest.mark.parametrize("spec", ["sface:0.3+dlib-resnet", "sface:-1+dlib-resnet:2", "sface:nan+dlib-resnet:1",
                                  "sface:0+dlib-resnet:0"])
def test_fusion_specs_a_fused_model_refuses_get_no_thresholds(spec: str) -> None:
    assert thresholds_for(spec) is None


def test_a_fused_library_stores_its_weights(tmp_path: Path) -> None:
    from faceprint.models.fusion import FusedEmbedder

    fused = FusedEmbedder([PatternNet.embedder(), PatternNet.embedder()], [0.25, 0.75])
    lib = open_library(tmp_path / "lib", {"weights": "pattern+pattern"}, embedder=fused, detect=False)
    assert lib.store.meta["embedder"]["weights"] == fused.name == "pattern:0.25+pattern:0.75"
