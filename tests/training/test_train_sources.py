"""One dataset interface: a pack trains exactly as the folder it came from, and a RecordIO set resumes bitwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.config import Config, apply_overrides
from faceprint.data.packed import write_pack
from faceprint.data.sources import folder_to_recordio, open_dataset
from faceprint.training import load_checkpoint, train


def _cfg(data: Path, out: Path, steps: int = 6, **extra: object) -> Config:
    over = {"data.root": str(data), "data.image_size": 32, "train.out": str(out), "train.steps": steps,
            "train.p": 4, "train.k": 3, "train.checkpoint_every": 3, "train.eval_every": 3, "train.log_every": 1,
            "train.eval_pairs_per_fold": 40, "train.projector_samples": 16, "model.embedding_dim": 16,
            "data.cache": False, **extra}
    return apply_overrides(Config(), over)


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_pack_trains_exactly_as_its_folder_with_loader_workers(tiny_faces: Path, tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "pack", open_dataset(tiny_faces), size=32, shard_items=50)  # 3 shards, the last short
    assert len(list(pack.glob("images-*.u8"))) == 3
    folder_run = train(_cfg(tiny_faces, tmp_path / "folder"), progress=False)
    packed_run = train(_cfg(pack, tmp_path / "packed", **{"data.workers": 2}), progress=False)
    assert _same_weights(tmp_path / "folder", tmp_path / "packed")
    assert [h["accuracy"] for h in folder_run.history] == [h["accuracy"] for h in packed_run.history]
    assert packed_run.history  # validation ran on packed items (read through the pack, not files)


def test_a_recordio_set_resumes_bitwise(tiny_faces: Path, tmp_path: Path) -> None:
    rec = tmp_path / "rec" / "train.rec"
    rec.parent.mkdir()
    folder_to_recordio(open_dataset(tiny_faces), rec)
    extra = {"data.load_size": 36}  # decoded and resized per item, then cropped
    full = train(_cfg(rec.parent, tmp_path / "full", **extra), progress=False)
    train(_cfg(rec.parent, tmp_path / "half", **extra), stop_after=4, progress=False)
    resumed = train(_cfg(rec.parent, tmp_path / "half", **extra), resume=True, progress=False)
    assert resumed.step == full.step == 6 and _same_weights(tmp_path / "full", tmp_path / "half")
    assert [h["accuracy"] for h in full.history] == [h["accuracy"] for h in resumed.history]


def test_an_interrupted_pack_resumes_and_a_damaged_one_is_refused(tiny_faces: Path, tmp_path: Path) -> None:
    from faceprint.data.folder import DatasetError
    from faceprint.data.packed import open_packed

    folder = open_dataset(tiny_faces)
    calls = {"n": 0}

    def stop_at_70(n: int) -> None:
        calls["n"] += 1
        if n == 70:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_pack(tmp_path / "p", folder, 32, shard_items=50, on_item=stop_at_70)
    first = (tmp_path / "p" / "images-00000.u8").stat().st_mtime_ns
    assert not (tmp_path / "p" / "pack.json").exists()  # never mistaken for a whole pack
    with pytest.raises(DatasetError, match="no identity folder"):  # no pack.json: not a pack, and no identities
        open_dataset(tmp_path / "p")
    write_pack(tmp_path / "p", folder, 32, shard_items=50)
    assert (tmp_path / "p" / "images-00000.u8").stat().st_mtime_ns == first  # the finished shard was kept
    packed = open_packed(tmp_path / "p")
    assert all(torch.equal(packed.raw(i, 32), folder.raw(i, 32)) for i in range(len(folder)))
    shard = tmp_path / "p" / "images-00001.u8"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="images-00001.u8 is missing or not 50 images"):
        open_packed(tmp_path / "p")


def test_a_pack_of_other_images_never_reuses_old_shards(tiny_faces: Path, tmp_path: Path) -> None:
    """Pack A, remove its pack.json (as the refusal says), pack B into the same folder: every item is B's."""
    from PIL import Image

    from faceprint.data.packed import open_packed

    other = tmp_path / "other"
    for d in sorted(tiny_faces.iterdir()):
        (other / d.name).mkdir(parents=True)
        for f in sorted(d.iterdir()):
            Image.fromarray(255 - __import__("numpy").asarray(Image.open(f).convert("RGB"))).save(other / d.name / f.name)
    a, b = open_dataset(tiny_faces), open_dataset(other)
    write_pack(tmp_path / "p", a, 32, shard_items=50)
    (tmp_path / "p" / "pack.json").unlink()
    write_pack(tmp_path / "p", b, 32, shard_items=50)
    packed = open_packed(tmp_path / "p")
    assert all(torch.equal(packed.raw(i, 32), b.raw(i, 32)) for i in range(len(b)))


def test_damaged_headers_and_packs_get_one_line_errors(tiny_faces: Path, tmp_path: Path) -> None:
    import json

    from faceprint.data.folder import DatasetError
    from faceprint.data.packed import open_packed
    from faceprint.data.recordio import IRHeader, RecordIOError, write_recordio

    rec = tmp_path / "bad.rec"  # a header record that claims three billion image records
    write_recordio(rec, [(0, IRHeader((3e9, 3e9 + 2)), b""), (1, IRHeader((0.0,)), b"x")])
    with pytest.raises(RecordIOError, match="header record 0 bounds keys"):
        open_dataset(rec)
    write_pack(tmp_path / "p", open_dataset(tiny_faces), 32, shard_items=50)
    meta = json.loads((tmp_path / "p" / "pack.json").read_text())
    for bad in ({"shards": meta["shards"][:-1]}, {"shards": ["../../etc/passwd"] + meta["shards"][1:]},
                {"shard_items": 0}):
        (tmp_path / "p" / "pack.json").write_text(json.dumps({**meta, **bad}))
        with pytest.raises(DatasetError, match="damaged"):
            open_packed(tmp_path / "p")
