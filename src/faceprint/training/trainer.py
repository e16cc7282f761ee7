"""The triplet-loss training loop: P×K batches, online mining, atomic checkpoints, exact resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from faceprint.backbones import create_backbone
from faceprint.config import Config, config_to_dict
from faceprint.data.dataset import FaceDataset, collate
from faceprint.data.offline import OfflineTripletSampler
from faceprint.data.sampler import PKSampler
from faceprint.data.transforms import Augment
from faceprint.evaluation.report import evaluate_folder
from faceprint.faults import fault_point
from faceprint.io import atomic_write_json
from faceprint.losses import LossResult
from faceprint.training.accel import Accel
from faceprint.training.checkpoint import (
    CheckpointError, check_architecture, find_checkpoints, latest_checkpoint, load_checkpoint, save_checkpoint,
)
from faceprint.training.data_setup import PreparedData, prepare_data
from faceprint.training.distributed import DistInfo, init_distributed, rank_share
from faceprint.training.finetune import apply_train_mode, freeze_parameters, frozen_modules, load_init_weights, trainable
from faceprint.training.objective import Objective
from faceprint.training.optim import create_optimizer, create_scheduler
from faceprint.training.tensorboard import TensorBoardLogger

__all__ = ["NonFiniteLossError", "TrainResult", "Trainer", "TrainingError", "train"]


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """Where a run ended and what it measured on the validation identities."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    finished: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_history: list[tuple[int, float]] = field(default_factory=list)


class Trainer:
    """Owns the model, optimizer, scheduler and sampler of one run folder."""

    def __init__(self, cfg: Config, resume: bool = False, progress: bool = True, data: PreparedData | None = None,
                 dist: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.train.out)
        self.dist = dist if dist is not None else init_distributed()
        self.is_main = self.dist is None or self.dist.is_main
        self.show_progress = progress and self.is_main
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        existing = find_checkpoints(self.run_dir)
        if existing and not resume:
            raise TrainingError(f"{self.run_dir} already holds checkpoints; pass --resume to continue it or choose another --out")
        self.data = data or prepare_data(cfg.data)
        torch.manual_seed(cfg.train.seed)
        self.model = create_backbone(cfg.model.backbone, embedding_dim=cfg.model.embedding_dim)
        self.frozen = frozen_modules(self.model, cfg.model)
        self.init_note = load_init_weights(self.model, cfg.model) if cfg.model.init and not (resume and existing) else None
        freeze_parameters(self.frozen)
        self.freeze_bn = cfg.model.freeze_bn if cfg.model.freeze_bn is not None else bool(cfg.model.init)
        self.optimizer = create_optimizer(trainable(self.model), cfg.optim)
        self.scheduler = create_scheduler(self.optimizer, cfg.train.steps, cfg.optim)
        self.objective = Objective(cfg.loss, cfg.train.mode, cfg.train.seed, gather=self.dist is not None)
        if self.dist is not None and cfg.train.mode != "online":
            raise TrainingError("distributed training needs train.mode=online (P×K batches)")
        # DDP averages gradients over ranks; each rank's loss is the global batch's loss, scaled back up by W
        self.accel = Accel.from_config(cfg.train, self.dist.local_rank if self.dist else 0)
        self.accel.prepare_model(self.model)
        ids = [self.accel.device.index] if self.accel.device.type == "cuda" else None
        self.net = self.accel.wrap(DistributedDataParallel(self.model, device_ids=ids) if self.dist else self.model)
        self.sampler: PKSampler | OfflineTripletSampler = (
            OfflineTripletSampler(self.data.train.labels, (cfg.train.p * cfg.train.k) // 3, seed=cfg.train.seed)
            if cfg.train.mode == "offline" else PKSampler(self.data.train.labels, cfg.train.p, cfg.train.k, seed=cfg.train.seed)
        )
        self.dataset = FaceDataset(
            self.data.train, cfg.data.image_size, cfg.data.load_size,
            Augment() if cfg.data.augment else Augment(crop_scale=1.0, flip=False, brightness=0, contrast=0, saturation=0),
            cache=cfg.data.cache,
        )
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.loss_history: list[tuple[int, float]] = []
        self.last_checkpoint: Path | None = None
        if resume and existing:
            self._restore()

    def _restore(self) -> None:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            raise CheckpointError(f"no loadable checkpoint in {self.run_dir}")
        state = load_checkpoint(path)
        check_architecture(state, self.cfg.model.backbone, self.cfg.model.embedding_dim, str(path))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.objective.load_state_dict(state.get("objective", {}))
        self.step = int(state["step"])
        self.history = list(state["metrics"].get("history", []))
        self.loss_history = [tuple(x) for x in state["metrics"].get("loss_history", [])]
        self.last_checkpoint = path

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": {"torch": torch.get_rng_state()},
            "sampler": {"step": self.step, "seed": self.cfg.train.seed},
            "arch": {"backbone": self.cfg.model.backbone, "embedding_dim": self.cfg.model.embedding_dim,
                     "image_size": self.cfg.data.image_size},
            "config": config_to_dict(self.cfg), "metrics": {"history": self.history, "loss_history": self.loss_history},
            "objective": self.objective.state_dict(),
        }

    def save(self) -> Path:
        """Write a checkpoint for the current step and prune old ones."""
        path = save_checkpoint(self.run_dir / "checkpoints" / f"step_{self.step:07d}.pt", self._state())
        fault_point("train.checkpoint")  # a checkpoint written, training still running
        self.last_checkpoint = path
        for old in find_checkpoints(self.run_dir)[: -max(self.cfg.train.keep_checkpoints, 1)]:
            old.unlink(missing_ok=True)
        return path

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> LossResult:
        """One optimizer step on a batch; raises NonFiniteLossError before touching the weights."""
        apply_train_mode(self.model, self.frozen, self.freeze_bn)
        images, labels = self.accel.batch(images, labels)
        result = self.objective(self.net, images, labels, self.step)
        if not torch.isfinite(result.loss):
            where = f"; the last good checkpoint {self.last_checkpoint} is intact" if self.last_checkpoint else ""
            raise NonFiniteLossError(
                f"loss became {float(result.loss.detach())} at step {self.step + 1}: training stopped{where}. "
                "Lower optim.lr or check the data."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.accel.backward_and_step(result.loss * (self.dist.world_size if self.dist else 1), self.optimizer)
        self.scheduler.step()
        self.step += 1
        return result

    def validate(self, logger: TensorBoardLogger | None) -> dict[str, Any] | None:
        """Held-out verification on the validation identities (None when there are none)."""
        if self.data.val is None:
            return None
        t, size = self.cfg.train, self.cfg.data.image_size
        report = evaluate_folder(self.model, self.data.val, size, t.eval_pairs_per_fold, seed=t.seed)
        metrics = {"step": self.step, **report.summary()}
        if t.eval_train_identities:
            subset = self.data.train.subset(self.data.train.classes[: t.eval_train_identities])
            metrics["train_accuracy"] = evaluate_folder(self.model, subset, size, t.eval_pairs_per_fold, seed=t.seed).verification.accuracy
        self.model.train()
        self.history.append(metrics)
        if logger is not None:
            logger.validation(self.step, metrics)
            logger.projector(self.step, self.model, self.data.val, self.cfg.data.image_size, self.cfg.train.projector_samples)
        return metrics

    def _loader(self, stop: int) -> DataLoader:
        """Batches for the remaining steps, drawn lazily (a long run must not pre-build them all)."""
        share = None
        if self.dist is not None:
            t, d = self.cfg.train, self.dist
            share = lambda batch: rank_share(batch, t.p, t.k, d.rank, d.world_size)  # noqa: E731
        return DataLoader(self.dataset, batch_sampler=_StepBatches(self.sampler, self.step, stop, share),  # type: ignore[arg-type]
                          collate_fn=collate, num_workers=self.cfg.data.workers,
                          pin_memory=self.cfg.data.pin_memory and self.accel.device.type == "cuda")

    def run(self, stop_after: int | None = None, on_step: Callable[[int, LossResult], None] | None = None) -> TrainResult:
        """Train until ``train.steps`` (or ``stop_after`` total steps), checkpointing as configured."""
        t = self.cfg.train
        stop = min(t.steps, stop_after) if stop_after is not None else t.steps
        main = self.is_main  # under DDP only rank 0 logs, validates and writes checkpoints
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_dir / "config.json", config_to_dict(self.cfg))
            atomic_write_json(self.run_dir / "data.json", self.data.report())
        logger = TensorBoardLogger(self.run_dir / "tb") if main else None
        progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TimeRemainingColumn(), disable=not self.show_progress, transient=False)
        try:
            with progress:
                task = progress.add_task("train", total=t.steps, completed=self.step, info="")
                if self.accel.note:
                    progress.console.print(self.accel.note)
                if self.init_note:
                    frozen = sum(p.numel() for m in self.frozen for p in m.parameters())
                    progress.console.print(f"{self.init_note}; {frozen:,} parameters frozen ({self.cfg.model.freeze}), "
                                           f"batch-norm statistics {'fixed' if self.freeze_bn else 'updated'}")
                info = ""
                for images, labels in self._loader(stop) if self.step < stop else []:
                    result = self.train_step(images, labels)
                    if self.step % t.log_every == 0 or self.step == stop:  # the progress text is built on these only
                        if logger is not None:
                            logger.step(self.step, result, self.optimizer.param_groups[0]["lr"])
                        self.loss_history.append((self.step, float(result.loss.detach())))
                        info = f"loss {self.loss_history[-1][1]:.4f} active {result.active_fraction:.2f}"
                    else:
                        info = info.split(" val acc")[0]
                    if on_step is not None:
                        on_step(self.step, result)
                    if main and t.eval_every and (self.step % t.eval_every == 0 or self.step == t.steps):
                        m = self.validate(logger)
                        info += f" val acc {m['accuracy']:.3f}" if m else ""
                    progress.update(task, completed=self.step, info=info)
                    if main and (self.step % t.checkpoint_every == 0 or self.step == stop):
                        self.save()
        except KeyboardInterrupt:
            if main:
                self.save()
            raise
        finally:
            if logger is not None:
                logger.close()
        if main and (self.last_checkpoint is None or self.step != int(self.last_checkpoint.stem.split("_")[1])):
            self.save()
        return TrainResult(self.run_dir, self.step, self.last_checkpoint, self.step >= t.steps, self.history, self.loss_history)


class _StepBatches:
    """A re-iterable, sized view of a sampler's batches for steps ``start`` .. ``stop - 1``."""

    def __init__(self, sampler: PKSampler | OfflineTripletSampler, start: int, stop: int,
                 share: Callable[[list], list] | None = None) -> None:  # type: ignore[type-arg]
        self.sampler, self.start, self.stop, self.share = sampler, start, stop, share

    def __iter__(self):  # type: ignore[no-untyped-def]
        batches = self.sampler.iterate(self.start, self.stop)
        return iter(batches if self.share is None else map(self.share, batches))

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)


def train(cfg: Config, resume: bool = False, stop_after: int | None = None, progress: bool = True) -> TrainResult:
    """Train (or resume) the run described by ``cfg``; see :class:`Trainer`."""
    return Trainer(cfg, resume=resume, progress=progress).run(stop_after=stop_after)
