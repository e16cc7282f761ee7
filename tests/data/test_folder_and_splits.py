"""Identity-folder scanning with bad files, splits by identity, and the P×K sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.data import DatasetError, PKSampler, scan_identity_folder, split_by_identity


def _tree(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / name / f"{i}.png")
    return root


def test_scan_skips_and_reports_bad_files(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"alice": 3, "bob": 2, "empty": 0})
    (root / "alice" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "alice" / "notes.txt").write_text("hi")
    (root / "stray.png").write_bytes(b"")
    (root / "carol").mkdir()
    (root / "carol" / "zero.png").write_bytes(b"")
    ds = scan_identity_folder(root)
    assert ds.classes == ["alice", "bob"]
    assert len(ds) == 5 and ds.labels.count(0) == 3
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert set(reasons) == {"broken.jpg", "notes.txt", "stray.png", "empty", "carol", "zero.png"}
    assert "0 readable" in reasons["empty"] and "empty file" in reasons["zero.png"]


def test_scan_errors_for_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        scan_identity_folder(tmp_path / "nope")
    (tmp_path / "e").mkdir()
    with pytest.raises(DatasetError, match="no identity folder"):
        scan_identity_folder(tmp_path / "e")


def test_split_is_disjoint_seeded_and_filtered(tmp_path: Path) -> None:
    counts = {f"id{i:02d}": (i % 5) + 1 for i in range(30)}
    ds = scan_identity_folder(_tree(tmp_path / "d", counts), verify=False)
    s = split_by_identity(ds, 0.2, 0.2, seed=3, min_images=2, max_images=4)
    allowed = {n for n, c in counts.items() if 2 <= c <= 4}
    assert set(s.train) | set(s.val) | set(s.test) == allowed
    assert not (set(s.train) & set(s.val) or set(s.train) & set(s.test) or set(s.val) & set(s.test))
    assert s == split_by_identity(ds, 0.2, 0.2, seed=3, min_images=2, max_images=4)
    assert s != split_by_identity(ds, 0.2, 0.2, seed=4, min_images=2, max_images=4)
    sub = ds.subset(s.test)
    assert sub.classes == s.test and set(sub.labels) == set(range(len(s.test)))


def test_pk_sampler_structure_and_determinism() -> None:
    labels = np.repeat(np.arange(10), [5, 5, 5, 5, 3, 3, 2, 1, 1, 6]).tolist()
    s = PKSampler(labels, p=4, k=4, seed=0)
    assert s.excluded_singletons == 2 and s.steps_per_epoch == 2
    for step in range(12):
        batch = s.batch(step)
        idx = [i for i, _ in batch]
        ids = [labels[i] for i in idx]
        assert len(batch) == 16
        assert all(ids[j * 4 : (j + 1) * 4] == [ids[j * 4]] * 4 for j in range(4))
        assert len({ids[j * 4] for j in range(4)}) == 4
        assert not {7, 8} & set(ids)  # singletons never sampled
        for j in range(4):  # identities with >= K images: no repeats; smaller ones: every image present
            group = idx[j * 4 : (j + 1) * 4]
            members = {i for i, y in enumerate(labels) if y == ids[j * 4]}
            assert set(group) == members if len(members) < 4 else len(set(group)) == 4
    again = PKSampler(labels, p=4, k=4, seed=0)
    assert [again.batch(t) for t in (5, 0, 11)] == [s.batch(t) for t in (5, 0, 11)]
    assert PKSampler(labels, p=4, k=4, seed=1).batch(0) != s.batch(0)


def test_pk_sampler_epoch_covers_identities() -> None:
    labels = np.repeat(np.arange(8), 4).tolist()
    s = PKSampler(labels, p=2, k=2, seed=0)
    seen = {labels[i] for t in range(s.steps_per_epoch) for i, _ in s.batch(t)}
    assert seen == set(range(8))


def test_pk_sampler_errors() -> None:
    with pytest.raises(DatasetError, match="only 2 identities"):
        PKSampler([0, 0, 1, 1, 2], p=3, k=2)
    with pytest.raises(ValueError, match="P >= 2"):
        PKSampler([0, 0, 1, 1], p=1, k=2)


def test_offline_triplet_sampler() -> None:
    from faceprint.data.offline import OfflineTripletSampler

    labels = np.repeat(np.arange(6), [4, 4, 3, 2, 1, 5]).tolist()
    s = OfflineTripletSampler(labels, n_triplets=5, seed=0)
    for step in range(8):
        b = [i for i, _ in s.batch(step)]
        a, p, n = b[:5], b[5:10], b[10:]
        assert all(labels[x] == labels[y] and x != y and labels[x] != labels[z] for x, y, z in zip(a, p, n))
        assert all(labels[x] != 4 for x in a)  # the one-image identity is never an anchor
    assert s.batch(3) == OfflineTripletSampler(labels, 5, seed=0).batch(3)
    assert s.batch(3) != OfflineTripletSampler(labels, 5, seed=1).batch(3)
