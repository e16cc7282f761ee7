"""The full default demo (about 3 minutes on 2 cores): the trained model must beat raw pixels clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprint.demo import run_demo


@pytest.mark.slow
def test_full_demo_beats_raw_pixels(tmp_path: Path) -> None:
    report = run_demo(tmp_path / "demo", progress=False, log=lambda *_: None)
    assert report["model"]["accuracy"] > report["pixels"]["accuracy"] + 0.2
    assert report["model"]["auc"] > 0.93 and report["model"]["rank1"] > report["pixels"]["rank1"] + 0.3
    assert report["seconds"] < 300
