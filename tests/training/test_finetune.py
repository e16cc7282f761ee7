"""Fine-tuning: init from pretrained weights or a run, freezing, fixed batch-norm statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.backbones import create_backbone
from faceprint.config import Config, ConfigError, apply_overrides
from faceprint.models import PretrainedInfo, save_pretrained
from faceprint.training import Trainer, train


def _cfg(data: Path, out: Path, **model: object) -> Config:
    base = ["data.image_size=32", "data.val_fraction=0", "data.test_fraction=0", "train.p=4", "train.k=2",
            "train.steps=3", "train.eval_every=0", "train.checkpoint_every=100", "model.embedding_dim=16",
            "optim.lr=0.01", "optim.optimizer=sgd"]
    cfg = apply_overrides(Config(), [*base, f"data.root={data}", f"train.out={out}"])
    return apply_overrides(cfg, {f"model.{k}": v for k, v in model.items()})


@pytest.fixture()
def pretrained_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> torch.nn.Module:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    torch.manual_seed(3)
    model = create_backbone("small_cnn", embedding_dim=16)
    with torch.no_grad():  # realistic batch-norm statistics, as a trained model has
        model.train()(torch.randn(32, 3, 32, 32))
    save_pretrained(model.state_dict(), PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    return model


@pytest.mark.filterwarnings("ignore::faceprint.losses.base.CollapseWarning")  # an untrained "pretrained" net
def test_init_loads_pretrained_weights_and_bn_stays_fixed(tiny_faces: Path, tmp_path: Path, pretrained_small) -> None:
    trainer = Trainer(_cfg(tiny_faces, tmp_path / "run", init="tiny"), progress=False)
    start = trainer.model.state_dict()
    ref = pretrained_small.state_dict()
    assert all(torch.equal(start[k], ref[k]) for k in ref)
    trainer.run()
    end = trainer.model.state_dict()
    stats = [k for k in ref if "running_" in k]
    assert stats and all(torch.equal(end[k], ref[k]) for k in stats)  # batch-norm statistics untouched
    assert any(not torch.equal(end[k], ref[k]) for k in ref if k.endswith("weight"))  # but the weights learned


def test_init_from_a_run_folder(tiny_faces: Path, tmp_path: Path) -> None:
    first = train(_cfg(tiny_faces, tmp_path / "a"), progress=False)
    trainer = Trainer(_cfg(tiny_faces, tmp_path / "b", init=str(first.run_dir), freeze_bn=False), progress=False)
    saved = torch.load(first.checkpoint, weights_only=True)["model"]
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in saved.items())


def test_mismatched_architecture_is_a_clear_error(tiny_faces: Path, tmp_path: Path, pretrained_small) -> None:
    with pytest.raises(ConfigError, match="model.embedding_dim=16"):
        Trainer(_cfg(tiny_faces, tmp_path / "run", init="tiny", embedding_dim=8), progress=False)


@pytest.mark.parametrize("freeze", ["stem", "all_but_last"])
def test_freeze_inception_resnet(freeze: str) -> None:
    from faceprint.config import ModelConfig
    from faceprint.training.finetune import apply_train_mode, freeze_parameters, frozen_modules

    model = create_backbone("inception_resnet_v1", embedding_dim=32)
    cfg = ModelConfig(backbone="inception_resnet_v1", embedding_dim=32, freeze=freeze)
    frozen = frozen_modules(model, cfg)
    n = freeze_parameters(frozen)
    assert 0 < n < sum(p.numel() for p in model.parameters())
    assert not model.conv2d_1a.conv.weight.requires_grad
    assert model.block8.conv2d.weight.requires_grad and model.last_linear.weight.requires_grad
    assert model.repeat_1[0].conv2d.weight.requires_grad == (freeze == "stem")
    apply_train_mode(model, frozen, freeze_bn=False)
    assert not model.conv2d_1a.bn.training and model.last_bn.training
    x = torch.randn(2, 3, 160, 160)
    model(x).sum().backward()
    assert model.conv2d_1a.conv.weight.grad is None and model.last_linear.weight.grad is not None


def test_freeze_errors() -> None:
    from faceprint.config import ModelConfig
    from faceprint.training.finetune import frozen_modules

    model = create_backbone("small_cnn", embedding_dim=8)
    with pytest.raises(ConfigError, match="inception_resnet_v1"):
        frozen_modules(model, ModelConfig(backbone="small_cnn", freeze="stem"))
    with pytest.raises(ConfigError, match="none, stem, all_but_last"):
        frozen_modules(model, ModelConfig(freeze="everything"))
