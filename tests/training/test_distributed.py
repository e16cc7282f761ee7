"""DDP on CPU with gloo, 2 processes on 127.0.0.1: same step as one process on the concatenated batch,
same mined triplets over the global batch, resume across world sizes, a killed rank fails cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from faceprint.config import Config, apply_overrides
from faceprint.training import Trainer, load_checkpoint
from faceprint.training.distributed import DistInfo, gather_labels, gather_with_grad, rank_share


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cfg(data: Path, out: Path, *extra: str) -> Config:
    return apply_overrides(Config(), [
        f"data.root={data}", f"train.out={out}", "data.image_size=32", "data.val_fraction=0", "data.test_fraction=0",
        "data.augment=false", "train.p=4", "train.k=2", "train.steps=2", "train.eval_every=0", "model.embedding_dim=16",
        "optim.optimizer=sgd", "optim.lr=0.01", "loss.miner=batch_all", "train.threads=1", *extra])


def _worker(rank: int, world: int, port: int, fn, args) -> None:  # type: ignore[no-untyped-def]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def base_run(tiny_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained run (batch norm in training mode) to start from: realistic batch-norm statistics."""
    out = tmp_path_factory.mktemp("base") / "run"
    cfg = _cfg(tiny_faces, out, "model.freeze_bn=false", "train.steps=5", "optim.lr=0.01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 5-step warm-up on tiny data may warn about spread
        Trainer(cfg, progress=False).run()
    return out


def _ddp_steps(rank: int, world: int, data: str, out: str, steps: int, miner: str, init: str) -> None:
    cfg = _cfg(Path(data), Path(out), f"loss.miner={miner}", f"model.init={init}", "optim.lr=0.2")
    trainer = Trainer(cfg, progress=False, dist=DistInfo(rank, world, rank, "gloo"))
    trainer.run(stop_after=steps)


def _spawn(fn, *args) -> None:  # type: ignore[no-untyped-def]
    mp.start_processes(_worker, args=(2, _port(), fn, args), nprocs=2, join=True, start_method="fork")


@pytest.mark.filterwarnings("ignore::faceprint.losses.base.CollapseWarning")  # tiny, briefly trained net
@pytest.mark.parametrize("miner", ["batch_all", "batch_hard", "semihard"])
def test_ddp_step_equals_one_process_on_the_concatenated_batch(tiny_faces: Path, tmp_path: Path, miner: str,
                                                               base_run: Path) -> None:
    _spawn(_ddp_steps, str(tiny_faces), str(tmp_path / "ddp"), 1, miner, str(base_run))
    single = Trainer(_cfg(tiny_faces, tmp_path / "one", f"loss.miner={miner}", f"model.init={base_run}", "optim.lr=0.2"),
                     progress=False)
    single.run(stop_after=1)
    ddp = load_checkpoint(tmp_path / "ddp")
    ref = load_checkpoint(tmp_path / "one")
    assert ddp["step"] == ref["step"] == 1
    for k, v in ref["model"].items():
        if v.is_floating_point():
            assert (ddp["model"][k] - v).abs().max() <= 1e-6, k
    first = load_checkpoint(base_run)["model"]
    moved = max(float((ref["model"][k] - first[k]).abs().max()) for k in first if first[k].is_floating_point())
    assert moved > 1e-4  # the step did change the weights, by 100x the tolerance


def _gather_mining(rank: int, world: int, out: str) -> None:
    from faceprint.miners import create_miner

    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    labels = torch.arange(8).repeat_interleave(2)
    local = emb[rank * 8 : (rank + 1) * 8].clone().requires_grad_(True)
    g_emb, g_lab = gather_with_grad(local), gather_labels(labels[rank * 8 : (rank + 1) * 8])
    results = {}
    for name in ("batch_hard", "semihard", "batch_all"):
        a, p, n = create_miner(name, "squared_l2", 0.2)(g_emb.detach(), g_lab)
        results[name] = torch.stack([a, p, n])
    g_emb.sum().backward()  # only the local block receives gradient
    results["grad"] = local.grad
    if rank == 0:
        torch.save({"global": g_emb.detach(), **results}, out)


def test_global_mining_sees_the_concatenated_batch(tmp_path: Path) -> None:
    from faceprint.miners import create_miner

    _spawn(_gather_mining, str(tmp_path / "g.pt"))
    got = torch.load(tmp_path / "g.pt")
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    labels = torch.arange(8).repeat_interleave(2)
    assert torch.equal(got["global"], emb)
    for name in ("batch_hard", "semihard", "batch_all"):
        assert torch.equal(got[name], torch.stack(create_miner(name, "squared_l2", 0.2)(emb, labels)))
    assert torch.equal(got["grad"], torch.ones(8, 8))


def test_rank_share_splits_whole_identities() -> None:
    batch = list(range(12))  # P=6 identities × K=2
    assert rank_share(batch, 6, 2, 0, 2) == [0, 1, 2, 3, 4, 5] and rank_share(batch, 6, 2, 1, 3) == [4, 5, 6, 7]
    with pytest.raises(ValueError, match="split evenly"):
        rank_share(batch, 6, 2, 0, 4)


def _cli(*args: str, **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, "-m", "faceprint", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kw)


def _train_args(data: Path, out: Path, steps: int) -> list[str]:
    return ["train", str(data), "--out", str(out), "--steps", str(steps), "--p", "4", "--k", "2", "--image-size", "32",
            "--embedding-dim", "16", "--set", "train.eval_every=0", "--set", "data.val_fraction=0",
            "--set", "data.test_fraction=0", "--set", "train.checkpoint_every=2", "--set", "data.augment=false"]


def test_nproc_2_then_resume_with_one_process(tiny_faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _cli(*_train_args(tiny_faces, out, 4), "--nproc", "2", "--stop-after", "2")
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    assert load_checkpoint(out)["step"] == 2
    proc = _cli(*_train_args(tiny_faces, out, 4), "--resume")  # world size 1 continues the world-size-2 run
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    assert load_checkpoint(out)["step"] == 4


def test_killing_one_rank_ends_the_run_cleanly(tiny_faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _cli(*_train_args(tiny_faces, out, 100000), "--nproc", "2", start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "checkpoints").glob("step_*.pt")):
        time.sleep(0.2)
    assert list((out / "checkpoints").glob("step_*.pt")), "no checkpoint appeared"
    workers = subprocess.run(["pgrep", "-f", "-P", str(_torchrun_pid(proc.pid)), "faceprint.train"],
                             capture_output=True, text=True).stdout.split()
    assert len(workers) == 2, workers
    os.kill(int(workers[1]), signal.SIGKILL)
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, log
    assert "training process" in log and "--resume" in log and "Traceback" not in log.split("error:")[-1]
    assert load_checkpoint(out)["step"] >= 2  # the newest checkpoint is whole


def _torchrun_pid(cli_pid: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(cli_pid)], capture_output=True, text=True).stdout.split()
    return int(children[0]) if children else cli_pid
