"""The trainer: exact resume, NaN stop, refusal to overwrite, and that training beats raw pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.config import Config, apply_overrides
from faceprint.training import CheckpointError, NonFiniteLossError, Trainer, TrainingError, load_checkpoint, train


def _cfg(data: Path, out: Path, steps: int = 8, **extra: object) -> Config:
    over = {"data.root": str(data), "data.image_size": 32, "train.out": str(out), "train.steps": steps,
            "train.p": 4, "train.k": 3, "train.checkpoint_every": 3, "train.eval_every": 4, "train.log_every": 1,
            "train.eval_pairs_per_fold": 40, "train.projector_samples": 16, "model.embedding_dim": 16, **extra}
    return apply_overrides(Config(), over)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run)["model"]


@pytest.mark.parametrize(
    ("optimizer", "miner", "mode"),
    [("adam", "batch_hard", "online"), ("sgd", "semihard_vgg", "online"), ("adagrad", "distance_weighted", "online"),
     ("adam", "batch_all", "offline")],
)
def test_resume_gives_identical_weights(tiny_faces: Path, tmp_path: Path, optimizer: str, miner: str, mode: str) -> None:
    extra = {"optim.optimizer": optimizer, "optim.lr": 0.01, "optim.warmup_steps": 2, "loss.miner": miner, "train.mode": mode}
    full = train(_cfg(tiny_faces, tmp_path / "full", **extra), progress=False)
    assert full.finished and full.step == 8
    half = train(_cfg(tiny_faces, tmp_path / "half", **extra), stop_after=4, progress=False)
    assert not half.finished and half.step == 4
    resumed = train(_cfg(tiny_faces, tmp_path / "half", **extra), resume=True, progress=False)
    assert resumed.finished and resumed.step == 8
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "half")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["accuracy"] for h in full.history] == [h["accuracy"] for h in resumed.history]


def test_run_folder_contents(tiny_faces: Path, tmp_path: Path) -> None:
    train(_cfg(tiny_faces, tmp_path / "r", steps=4), progress=False)
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"config.json", "data.json", "checkpoints", "tb"} <= names
    assert list((tmp_path / "r" / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "r" / "tb" / "projector_config.pbtxt").exists()
    assert len(list((tmp_path / "r" / "checkpoints").glob("step_*.pt"))) <= 2


def test_existing_run_is_not_overwritten(tiny_faces: Path, tmp_path: Path) -> None:
    train(_cfg(tiny_faces, tmp_path / "r", steps=3), progress=False)
    before = (tmp_path / "r" / "checkpoints" / "step_0000003.pt").read_bytes()
    with pytest.raises(TrainingError, match="--resume"):
        train(_cfg(tiny_faces, tmp_path / "r", steps=3), progress=False)
    with pytest.raises(CheckpointError, match="resnet18"):
        train(_cfg(tiny_faces, tmp_path / "r", steps=6, **{"model.backbone": "resnet18"}), resume=True, progress=False)
    assert (tmp_path / "r" / "checkpoints" / "step_0000003.pt").read_bytes() == before


def test_nan_loss_stops_with_step_and_keeps_checkpoint(tiny_faces: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_faces, tmp_path / "r", steps=10)
    trainer = Trainer(cfg, progress=False)
    calls = {"n": 0}
    original = trainer.objective.triplet.per_triplet

    def poisoned(emb, trip):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        losses, d_ap, d_an = original(emb, trip)
        return (losses * float("nan") if calls["n"] == 5 else losses), d_ap, d_an

    trainer.objective.triplet.per_triplet = poisoned  # type: ignore[method-assign]
    ckpt = tmp_path / "r" / "checkpoints" / "step_0000003.pt"
    with pytest.raises(NonFiniteLossError, match=r"nan at step 5.*step_0000003.pt is intact"):
        trainer.run()
    assert load_checkpoint(ckpt)["step"] == 3
    assert all(torch.isfinite(v).all() for v in load_checkpoint(ckpt)["model"].values() if v.is_floating_point())


def test_too_few_identities_is_a_clear_error(tiny_faces: Path, tmp_path: Path) -> None:
    from faceprint.data import DatasetError

    with pytest.raises(DatasetError, match="P=40 identities per batch"):
        train(_cfg(tiny_faces, tmp_path / "r", **{"train.p": 40}), progress=False)


def test_bad_files_and_small_identities_are_skipped_and_reported(tmp_path: Path) -> None:
    import json
    import shutil

    from faceprint.data.synth import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "d", identities=10, images_per_identity=4, size=32, seed=2)
    (root / "empty").mkdir()
    (root / "lonely").mkdir()
    shutil.copy(root / "id_0000" / "0000.png", root / "lonely" / "one.png")
    (root / "id_0001" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "id_0002" / "zero.png").write_bytes(b"")
    result = train(_cfg(root, tmp_path / "r", steps=2, **{"data.val_fraction": 0.0, "data.test_fraction": 0.0,
                                                         "data.min_images": 1}), progress=False)
    assert result.finished
    report = json.loads((tmp_path / "r" / "data.json").read_text())
    skipped = {Path(s["path"]).name for s in report["skipped"]}
    assert skipped == {"empty", "corrupt.jpg", "zero.png"}
    assert "lonely" in report["split"]["train"]  # kept in the data, never sampled (no positive pair)


@pytest.mark.parametrize(
    "extra",
    [{"loss.miner": "batch_all", "loss.reduction": "mean_nonzero"}, {"loss.miner": "semihard"},
     {"loss.miner": "random"}, {"loss.miner": "triplet_margin", "loss.type_of_triplets": "semihard"},
     {"loss.loss": "adaptive", "loss.adaptive_lambda": 0.5}, {"train.mode": "offline"}],
    ids=lambda d: "-".join(str(v) for v in d.values()),
)
def test_every_objective_trains(tiny_faces: Path, tmp_path: Path, extra: dict) -> None:
    result = train(_cfg(tiny_faces, tmp_path / "r", steps=3, **extra), progress=False)
    assert result.finished and result.checkpoint is not None


def test_bad_objective_names_are_config_errors(tiny_faces: Path, tmp_path: Path) -> None:
    from faceprint.config import ConfigError

    with pytest.raises(ConfigError, match="train.mode"):
        train(_cfg(tiny_faces, tmp_path / "a", **{"train.mode": "batch"}), progress=False)
    with pytest.raises(ValueError, match="unknown miner"):
        train(_cfg(tiny_faces, tmp_path / "b", **{"loss.miner": "hardest"}), progress=False)
