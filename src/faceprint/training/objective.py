"""What a training step minimizes: miner + loss from a LossConfig, for online or offline batches."""

from __future__ import annotations

import torch

from faceprint.config import ConfigError, LossConfig
from faceprint.losses import AdaptiveTripletLoss, LossResult, TripletMarginLoss
from faceprint.miners import AllTripletsMiner, create_miner
from faceprint.training.distributed import gather_labels, gather_with_grad
from faceprint.training.xbm import CrossBatchMemory

__all__ = ["Objective"]


class Objective:
    """Embeds a batch and returns its LossResult.

    Online: one forward pass over the P×K batch, then the configured miner (batch-all streams over
    every valid triplet without indices). Offline: the batch is anchors | positives | negatives of
    pre-drawn triplets, embedded in three forward passes as the seed repositories did. Random
    miners draw from a generator seeded by (seed, step), so a resumed run mines the same triplets.
    With ``gather`` (distributed runs) embeddings and labels of all ranks are gathered before mining.
    """

    def __init__(self, cfg: LossConfig, mode: str = "online", seed: int = 0, gather: bool = False) -> None:
        if mode not in ("online", "offline"):
            raise ConfigError(f"unknown train.mode {mode!r}; choose online or offline")
        if cfg.loss not in ("triplet", "adaptive"):
            raise ConfigError(f"unknown loss.loss {cfg.loss!r}; choose triplet or adaptive")
        self.mode, self.seed, self.gather = mode, seed, gather
        self.xbm = CrossBatchMemory(cfg.xbm_size) if cfg.xbm_size > 0 else None
        if self.xbm is not None and mode != "online":
            raise ConfigError("loss.xbm_size needs train.mode=online")
        d = cfg.distance
        self.miner = create_miner(cfg.miner, d, cfg.margin, type_of_triplets=cfg.type_of_triplets, fallback=cfg.semihard_fallback)
        self.triplet = TripletMarginLoss(cfg.margin, d, cfg.reduction, cfg.soft, cfg.collapse_threshold)  # type: ignore[arg-type]
        self.adaptive = (
            AdaptiveTripletLoss(cfg.margin, cfg.adaptive_lambda, d, cfg.match_norm, cfg.match_members, self.miner, cfg.soft)  # type: ignore[arg-type]
            if cfg.loss == "adaptive" else None
        )

    def __call__(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, step: int) -> LossResult:
        if self.mode == "offline":
            t = images.shape[0] // 3
            emb = torch.cat([model(images[i * t : (i + 1) * t]) for i in range(3)])
            ar = torch.arange(t, device=emb.device)
            triplets = (ar, ar + t, ar + 2 * t)
        else:
            emb = model(images)
            if self.gather:  # DDP: mine over the global batch (every rank's block, in rank order)
                emb, labels = gather_with_grad(emb), gather_labels(labels)
            if self.xbm is not None:
                return self._with_memory(emb, labels, step)
            if isinstance(self.miner, AllTripletsMiner) and self.adaptive is None:
                return self.triplet(emb, labels)  # blockwise, no index tensors
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            triplets = self.miner(emb, labels, gen)
        if self.adaptive is not None:
            return self.adaptive(emb, labels, triplets)
        return self.triplet(emb, labels, triplets)

    def _with_memory(self, emb: torch.Tensor, labels: torch.Tensor, step: int) -> LossResult:
        """Mine over [batch; memory] with anchors from the batch only, then remember the batch."""
        assert self.xbm is not None
        all_emb, all_labels = self.xbm.with_batch(emb, labels)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        a, p, n = self.miner(all_emb, all_labels, gen)
        keep = a < len(emb)
        triplets = (a[keep], p[keep], n[keep])
        result = (self.adaptive(all_emb, all_labels, triplets) if self.adaptive is not None
                  else self.triplet(all_emb, all_labels, triplets))
        self.xbm.extend(emb, labels)
        return result

    def state_dict(self) -> dict:  # type: ignore[type-arg]
        """What a checkpoint must hold for an exact resume (the cross-batch memory)."""
        return {"xbm": self.xbm.state_dict()} if self.xbm is not None else {}

    def load_state_dict(self, state: dict) -> None:  # type: ignore[type-arg]
        if self.xbm is not None and "xbm" in state:
            self.xbm.load_state_dict(state["xbm"])
