"""Scan, split and describe the training data of a config; shared by the trainer and the demo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faceprint.config import DataConfig
from faceprint.data.folder import DatasetError, IdentityFolder
from faceprint.data.sources import dataset_kind, open_dataset
from faceprint.data.splits import IdentitySplit, split_by_identity

__all__ = ["PreparedData", "prepare_data"]


@dataclass
class PreparedData:
    """The scanned dataset and its train/val/test subsets by identity."""

    folder: IdentityFolder
    split: IdentitySplit
    train: IdentityFolder
    val: IdentityFolder | None
    test: IdentityFolder | None

    def report(self) -> dict[str, Any]:
        """JSON-ready description: counts, split identities and skipped files."""
        return {
            "root": str(self.folder.root),
            "kind": dataset_kind(self.folder.root) if self.folder.reader is None else type(self.folder.reader).__name__,
            "identities": len(self.folder.classes),
            "images": len(self.folder),
            "split": {"train": self.split.train, "val": self.split.val, "test": self.split.test},
            "skipped": self.folder.skipped_report(),
        }


def prepare_data(cfg: DataConfig) -> PreparedData:
    """Scan ``cfg.root`` (bad files skipped and listed) and split it by identity."""
    if not cfg.root:
        raise DatasetError("no dataset given: set data.root (or pass DATA on the command line)")
    folder = open_dataset(cfg.root, verify=True)  # a folder, a pack or a RecordIO set
    split = split_by_identity(folder, cfg.val_fraction, cfg.test_fraction, cfg.split_seed, cfg.min_images, cfg.max_images)
    if not split.train:
        raise DatasetError("the split left no training identities; lower data.val_fraction/test_fraction")
    return PreparedData(
        folder, split, folder.subset(split.train),
        folder.subset(split.val) if split.val else None,
        folder.subset(split.test) if split.test else None,
    )
