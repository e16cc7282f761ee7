"""Cross-batch memory: FIFO contents, mining against memory by brute force, no gradient into memory, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from faceprint.config import Config, LossConfig, apply_overrides
from faceprint.training import Trainer, load_checkpoint
from faceprint.training.objective import Objective
from faceprint.training.xbm import CrossBatchMemory


def test_fifo_keeps_the_newest() -> None:
    mem = CrossBatchMemory(5)
    for i in range(3):
        mem.extend(torch.full((2, 1), float(i)), torch.full((2,), i))
    assert len(mem) == 5 and mem.labels.tolist() == [2, 2, 1, 1, 0]
    assert not mem.embeddings.requires_grad


class _Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1)


def test_batch_hard_with_memory_equals_brute_force() -> None:
    torch.manual_seed(0)
    obj = Objective(LossConfig(miner="batch_hard", margin=0.2, xbm_size=16))
    model = _Identity()
    first = torch.randn(8, 4)
    labels1 = torch.arange(4).repeat_interleave(2)
    obj(model, first, labels1, 0)
    batch = torch.randn(8, 4, requires_grad=True)
    labels2 = torch.arange(2, 6).repeat_interleave(2)
    result = obj(model, batch, labels2, 1)
    emb = torch.cat([F.normalize(batch, dim=1), F.normalize(first, dim=1)])
    lab = torch.cat([labels2, labels1])
    d = (torch.cdist(emb, emb) ** 2).detach()
    expected = []
    for a in range(8):  # anchors only from the current batch; candidates from batch + memory
        pos = [j for j in range(16) if lab[j] == lab[a] and j != a]
        neg = [j for j in range(16) if lab[j] != lab[a]]
        p = max(pos, key=lambda j: float(d[a, j]))
        n = min(neg, key=lambda j: float(d[a, j]))
        expected.append(F.relu(d[a, p] - d[a, n] + 0.2))  # values only; the loss's own graph is checked below
    assert result.loss.item() == pytest.approx(torch.stack(expected).mean().item(), abs=1e-5)
    result.loss.backward()
    assert batch.grad is not None and len(obj.xbm) == 16 and obj.xbm.labels[:8].tolist() == labels2.tolist()


def test_size_zero_is_plain_mining() -> None:
    assert Objective(LossConfig(xbm_size=0)).xbm is None


def _cfg(data: Path, out: Path) -> Config:
    return apply_overrides(Config(), [
        f"data.root={data}", f"train.out={out}", "data.image_size=32", "data.val_fraction=0", "data.test_fraction=0",
        "train.p=4", "train.k=2", "train.steps=6", "train.eval_every=0", "train.checkpoint_every=3",
        "model.embedding_dim=16", "loss.xbm_size=24", "loss.miner=semihard", "loss.semihard_fallback=hardest"])


def test_resume_restores_the_memory(tiny_faces: Path, tmp_path: Path) -> None:
    Trainer(_cfg(tiny_faces, tmp_path / "a"), progress=False).run()
    Trainer(_cfg(tiny_faces, tmp_path / "b"), progress=False).run(stop_after=3)
    Trainer(_cfg(tiny_faces, tmp_path / "b"), resume=True, progress=False).run()
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert torch.equal(a["objective"]["xbm"]["embeddings"], b["objective"]["xbm"]["embeddings"])
