"""Rank-1 and MAP@R on hand-made cases; pair files and generated pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.data import DatasetError, scan_identity_folder
from faceprint.evaluation import evaluate_identification, generate_pairs, read_lfw_pairs


def test_identification_hand_case() -> None:
    # 1-D points; labels A A A B B.
    x = torch.tensor([[0.0], [1.0], [5.0], [2.0], [6.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    r = evaluate_identification(x, y)
    # Nearest neighbours: 0→1 (A ✓), 1→0 (A ✓), 2→4 (B ✗), 3→1 (A ✗), 4→2 (A ✗): rank-1 = 2/5
    assert r.rank1 == pytest.approx(2 / 5) and r.n_probes == 5
    # MAP@R (R=2 for A, 1 for B):
    # 0: order 1,3,2 → rel 1,0 → (1/1)/2 = .5 ; 1: order 0,3,.. → rel 1,0 → .5 ;
    # 2: order 4,3,.. → rel 0,0 → 0 ; 3: order 1 → rel 0 → 0 ; 4: order 2 → rel 0 → 0.
    assert r.map_at_r == pytest.approx((0.5 + 0.5) / 5)


def test_identification_perfect_and_singletons() -> None:
    x = torch.tensor([[0.0], [0.1], [10.0], [10.1], [50.0]])
    r = evaluate_identification(x, torch.tensor([0, 0, 1, 1, 2]))
    assert r.rank1 == 1.0 and r.map_at_r == 1.0 and r.n_probes == 4  # the singleton is no probe


def _folder(root: Path, counts: dict[str, int]) -> Path:
    from PIL import Image

    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4)).save(root / name / f"{name}_{i + 1:04d}.png")
    return root


def test_generate_pairs_balanced_unique_seeded(tmp_path: Path) -> None:
    ds = scan_identity_folder(_folder(tmp_path, {f"p{i}": 5 for i in range(12)}), verify=False)
    pl = generate_pairs(ds, n_folds=10, pairs_per_fold=20, seed=1)
    assert len(pl) == 200 and pl.issame.reshape(10, 20)[:, :10].all() and not pl.issame.reshape(10, 20)[:, 10:].any()
    label = dict(zip(ds.paths, ds.labels))
    assert all((label[a] == label[b]) == s for a, b, s in zip(pl.first, pl.second, pl.issame))
    keys = {frozenset((a, b)) for a, b in zip(pl.first, pl.second)}
    assert len(keys) == 200
    assert generate_pairs(ds, 10, 20, seed=1).first == pl.first


def test_generate_pairs_caps_and_errors(tmp_path: Path) -> None:
    ds = scan_identity_folder(_folder(tmp_path / "a", {"x": 3, "y": 3, "z": 3}), verify=False)
    pl = generate_pairs(ds, n_folds=3, pairs_per_fold=600)  # 9 same pairs available → 3 per fold
    assert len(pl) == 18
    one = scan_identity_folder(_folder(tmp_path / "b", {"solo": 1, "other": 1}), verify=False)
    with pytest.raises(DatasetError):
        generate_pairs(one)


def test_read_lfw_pairs_skips_missing(tmp_path: Path) -> None:
    _folder(tmp_path / "img", {"Ann": 2, "Bob": 1})
    (tmp_path / "pairs.txt").write_text("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t1\nAnn\t1\t9\nBob\t1\tCid\t1\n")
    pl = read_lfw_pairs(tmp_path / "pairs.txt", tmp_path / "img")
    assert len(pl) == 2 and pl.missing == 2 and pl.issame.tolist() == [True, False]
    (tmp_path / "bad.txt").write_text("10 300\nAnn\n")
    with pytest.raises(DatasetError, match="expected 3 or 4 fields"):
        read_lfw_pairs(tmp_path / "bad.txt", tmp_path / "img")
