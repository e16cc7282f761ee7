"""A tiny pretrained model in a temporary weights cache, for index and server tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.backbones import create_backbone
from faceprint.models import PretrainedInfo, save_pretrained


@pytest.fixture()
def tiny_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A small_cnn "pretrained" model named ``tiny`` (32 px, 16-d) in a fresh FACEPRINT_HOME."""
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    model = create_backbone("small_cnn", embedding_dim=16)
    save_pretrained(model.state_dict(), PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    return "tiny"
