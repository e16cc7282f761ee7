"""Identity-folder datasets: ``root/<identity>/<image>``, scanned once, bad files reported not fatal."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from faceprint.data.images import IMAGE_EXTENSIONS, ImageLoadError, load_rgb
from faceprint.data.transforms import pil_to_uint8

__all__ = ["DatasetError", "IdentityFolder", "ItemReader", "Skipped", "scan_identity_folder"]


class DatasetError(ValueError):
    """The dataset cannot be used at all (missing root, no identity with images...)."""


@dataclass(frozen=True)
class Skipped:
    """A file or folder left out of the dataset and why."""

    path: str
    reason: str


class ItemReader(Protocol):
    """Reads the items of a packed or RecordIO dataset; their ``paths`` are ``root/<identity>/<item number>``."""

    def raw(self, path: Path, size: int) -> torch.Tensor:
        """The item as a (3, size, size) uint8 RGB tensor."""
        ...


@dataclass
class IdentityFolder:
    """Image paths and integer labels; ``classes[label]`` is the identity folder name.

    ``reader``: set for a packed or RecordIO dataset, whose ``paths`` name items inside it rather than files.
    """

    root: Path
    paths: list[Path]
    labels: list[int]
    classes: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    reader: Any = None  # ItemReader | None

    def __len__(self) -> int:
        return len(self.paths)

    def raw(self, index: int, size: int) -> torch.Tensor:
        """Item ``index`` as a (3, size, size) uint8 RGB tensor (decoded from its file, or read from a pack)."""
        if self.reader is not None:
            return self.reader.raw(self.paths[index], size)
        return pil_to_uint8(load_rgb(self.paths[index]), size)

    def by_identity(self) -> dict[int, list[int]]:
        """Sample indices grouped by label."""
        groups: dict[int, list[int]] = {}
        for i, y in enumerate(self.labels):
            groups.setdefault(y, []).append(i)
        return groups

    def subset(self, identities: list[str]) -> IdentityFolder:
        """The samples of ``identities`` only, relabelled 0..len(identities)-1 in the given order."""
        index = {name: k for k, name in enumerate(identities)}
        keep = [(p, index[self.classes[y]]) for p, y in zip(self.paths, self.labels) if self.classes[y] in index]
        return IdentityFolder(self.root, [p for p, _ in keep], [y for _, y in keep], list(identities), list(self.skipped),
                              self.reader)

    def skipped_report(self) -> list[dict[str, str]]:
        """The skip list as JSON-ready records."""
        return [{"path": s.path, "reason": s.reason} for s in self.skipped]


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def scan_identity_folder(root: str | Path, verify: bool = True, min_images: int = 1) -> IdentityFolder:
    """List ``root/<identity>/<image>`` files; with ``verify`` each image is decoded once and bad ones skipped.

    Identity folders with fewer than ``min_images`` readable images are skipped and reported.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    paths: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    skipped: list[Skipped] = []
    for ident in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if not ident.is_dir():
            skipped.append(Skipped(str(ident), "not an identity folder (files belong in root/<identity>/)"))
            continue
        good: list[Path] = []
        for f in sorted(ident.iterdir()):
            if not f.is_file() or not _is_image(f):
                if not f.name.startswith("."):
                    skipped.append(Skipped(str(f), "not an image file"))
                continue
            if verify:
                try:
                    load_rgb(f)
                except ImageLoadError as exc:
                    skipped.append(Skipped(str(f), str(exc).removeprefix(f"{f}: ")))
                    continue
            good.append(f)
        if len(good) < max(min_images, 1):
            skipped.append(Skipped(str(ident), f"identity has {len(good)} readable image(s), needs {max(min_images, 1)}"))
            continue
        label = len(classes)
        classes.append(ident.name)
        paths.extend(good)
        labels.extend([label] * len(good))
    if not classes:
        raise DatasetError(f"no identity folder with readable images under {root} (expected root/<identity>/<image>)")
    return IdentityFolder(root, paths, labels, classes, skipped)
