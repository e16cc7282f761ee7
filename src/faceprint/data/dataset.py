"""A torch Dataset over an ``IdentityFolder`` with optional in-memory cache and seeded augmentation."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from faceprint.data.folder import IdentityFolder
from faceprint.data.transforms import Augment, augment, fixed_standardize, resize_uint8

__all__ = ["FaceDataset", "collate"]


class FaceDataset(Dataset):
    """Items are ``(image, label)``: standardized float (3, S, S) tensors.

    Indexing with ``(index, seed)`` applies the training augmentation with that seed; a plain int
    gives the evaluation view. ``load_size`` is the size images are decoded to (and cached at).
    """

    def __init__(
        self, folder: IdentityFolder, image_size: int, load_size: int | None = None,
        augmentation: Augment | None = None, cache: bool = False,
    ) -> None:
        self.folder = folder
        self.image_size = image_size
        self.load_size = load_size or image_size
        self.augmentation = augmentation or Augment()
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.folder)

    def raw(self, index: int) -> torch.Tensor:
        """The decoded (3, load_size, load_size) uint8 image."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        x = self.folder.raw(index, self.load_size)
        if self._cache is not None:
            self._cache[index] = x
        return x

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        if isinstance(item, tuple):
            index, seed = item
            x = augment(self.raw(index), self.image_size, self.augmentation, seed)
        else:
            index = item
            x = resize_uint8(self.raw(index), self.image_size)
        return fixed_standardize(x), self.folder.labels[index]


def collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images and labels."""
    return torch.stack([x for x, _ in batch]), torch.tensor([y for _, y in batch], dtype=torch.long)
