"""Distributed training helpers (torchrun / DDP): process group set-up, rank shares of a batch, global gathers.

``torchrun`` (or ``faceprint train --nproc N``) sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR; with a
world size above 1 the trainer joins the process group (gloo on CPU, NCCL on GPU), wraps the model in
DistributedDataParallel, gives each rank a disjoint block of the global P×K batch's identities, and
gathers embeddings so that miners see the whole global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "gather_labels", "gather_with_grad", "init_distributed", "rank_share"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(timeout_s: float = 1800) -> DistInfo | None:
    """Join the process group torchrun describes (None when not launched with a world size above 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)


def rank_share(batch: list, p: int, k: int, rank: int, world_size: int) -> list:  # type: ignore[type-arg]
    """Rank ``rank``'s block of a P×K batch (ordered identity by identity): P/W whole identities."""
    if p % world_size:
        raise ValueError(f"train.p={p} identities must split evenly over {world_size} processes")
    per = (p // world_size) * k
    return batch[rank * per : (rank + 1) * per]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank in rank order; the local block keeps its autograd graph.

    Other ranks' blocks are constants here: each rank back-propagates into its own samples only, and
    DDP's gradient averaging (with the loss scaled by the world size) sums those contributions, which
    equals the single-process gradient of the loss on the concatenated batch.
    """
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts)


def gather_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels of every rank's block, in rank order."""
    parts = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, labels.contiguous())
    return torch.cat(parts)
