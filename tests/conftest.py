"""Shared fixtures: the ../shared/data folder (skipped when absent) and a tiny synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.data.synth import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test when it is not beside the checkout."""
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def tiny_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic identities × 6 images at 32 px (seed 0)."""
    out = tmp_path_factory.mktemp("tiny_faces")
    return write_synthetic_dataset(out, identities=24, images_per_identity=6, size=32, seed=0)
