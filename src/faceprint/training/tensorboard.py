"""TensorBoard logging for training: step scalars, validation metrics and the embedding projector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from faceprint.data.dataset import FaceDataset
from faceprint.data.folder import IdentityFolder
from faceprint.losses import LossResult

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger:
    """A thin wrapper over SummaryWriter with faceprint's tag names."""

    def __init__(self, log_dir: Path) -> None:
        self.writer = SummaryWriter(str(log_dir))

    def step(self, step: int, result: LossResult, lr: float) -> None:
        w = self.writer
        w.add_scalar("train/loss", float(result.loss.detach()), step)
        w.add_scalar("train/active_triplet_fraction", result.active_fraction, step)
        w.add_scalar("train/triplets", result.n_triplets, step)
        w.add_scalar("train/active_triplets", result.n_active, step)
        w.add_scalar("train/mean_d_ap", result.mean_ap, step)
        w.add_scalar("train/mean_d_an", result.mean_an, step)
        w.add_scalar("train/lr", lr, step)
        w.add_scalar("train/embedding_spread", result.spread, step)
        for key, value in result.extras.items():
            w.add_scalar(f"train/{key}", value, step)

    def validation(self, step: int, metrics: dict[str, Any]) -> None:
        for key in ("accuracy", "val", "auc", "eer", "rank1", "map_at_r"):
            if metrics.get(key) is not None:
                self.writer.add_scalar(f"val/{key}", metrics[key], step)

    def projector(self, step: int, model: torch.nn.Module, folder: IdentityFolder, image_size: int, n: int) -> None:
        """Embeddings of the first ``n`` validation images, with identity names and thumbnails."""
        if n <= 0:
            return
        ds = FaceDataset(folder, image_size)
        idx = list(range(min(n, len(ds))))
        images = torch.stack([ds[i][0] for i in idx])
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            emb = model(images)
        model.train(was_training)
        names = [folder.classes[folder.labels[i]] for i in idx]
        self.writer.add_embedding(emb, metadata=names, label_img=(images * 128 + 127.5) / 255, global_step=step, tag="val")

    def close(self) -> None:
        self.writer.close()
