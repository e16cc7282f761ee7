"""The synthetic dataset is deterministic and face-like; transforms are seeded and standardized."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from faceprint.data.synth import write_synthetic_dataset
from faceprint.data.transforms import Augment, augment, fixed_standardize


def test_synth_layout_and_determinism(tmp_path: Path) -> None:
    a = write_synthetic_dataset(tmp_path / "a", identities=3, images_per_identity=2, size=24, seed=5)
    b = write_synthetic_dataset(tmp_path / "b", identities=3, images_per_identity=2, size=24, seed=5)
    c = write_synthetic_dataset(tmp_path / "c", identities=3, images_per_identity=2, size=24, seed=6)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert [str(f) for f in files] == [f"id_{i:04d}/{j:04d}.png" for i in range(3) for j in range(2)]
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)


def test_synth_images_of_one_identity_vary(tmp_path: Path) -> None:
    from PIL import Image

    root = write_synthetic_dataset(tmp_path, identities=1, images_per_identity=4, size=32, seed=0)
    arrs = [np.asarray(Image.open(p), dtype=float) for p in sorted(root.rglob("*.png"))]
    assert min(np.abs(x - y).mean() for i, x in enumerate(arrs) for y in arrs[i + 1 :]) > 5


def test_fixed_standardization() -> None:
    x = torch.tensor([0.0, 127.5, 255.0])
    assert torch.allclose(fixed_standardize(x), torch.tensor([-127.5 / 128, 0.0, 127.5 / 128]))


def test_augment_seeded_and_sized() -> None:
    x = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    a, b, c = augment(x, 32, Augment(), 1), augment(x, 32, Augment(), 1), augment(x, 32, Augment(), 2)
    assert a.shape == (3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 255
    plain = augment(x, 40, Augment(crop_scale=1.0, flip=False, brightness=0, contrast=0, saturation=0), 0)
    assert torch.equal(plain, x.float())
