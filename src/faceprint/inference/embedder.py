"""``Embedder``: a stable way to turn face images into embeddings with a trained or pretrained model."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from faceprint.embedding import EmbedFn, ImageInput, embed, embed_paths, model_embed_fn
from faceprint.inference.onnx import OnnxEmbedFn, export_onnx, onnx_bytes

__all__ = ["BACKENDS", "Embedder"]

BACKENDS = ("torch", "channels_last", "onnx")


class Embedder:
    """A model plus its input size and an inference backend (``torch``, ``channels_last`` or ``onnx``).

    Images (paths, Pillow images, uint8 arrays) are resized to ``image_size`` and standardized with
    (x − 127.5)/128; outputs are L2-normalized float32 rows.
    """

    def __init__(self, model: torch.nn.Module, image_size: int, name: str = "", backend: str = "torch") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.model = model.eval()
        self.image_size = image_size
        self.name = name
        self.backend = backend
        self._fn = self._make_fn()

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, backend: str = "torch") -> Embedder:
        """A model from the local weights cache (``faceprint weights import-tf/import-pt`` puts it there)."""
        from faceprint.pretrained.store import load_pretrained

        model, info = load_pretrained(name_or_path)
        return cls(model, info.image_size, info.name, backend)

    @classmethod
    def from_checkpoint(cls, path: str | Path, backend: str = "torch") -> Embedder:
        """A model trained by ``faceprint train`` (checkpoint file or run folder)."""
        from faceprint.training.checkpoint import load_model

        model, arch = load_model(path)
        return cls(model, arch["image_size"], f"{arch['backbone']} ({Path(path).name})", backend)

    @classmethod
    def from_spec(cls, spec: dict) -> Embedder:  # type: ignore[type-arg]
        """What an index or classifier file names: ``{"weights": name}`` or ``{"checkpoint": path}`` (+ ``backend``)."""
        backend = spec.get("backend", "torch")
        if spec.get("weights"):
            return cls.from_pretrained(spec["weights"], backend=backend)
        if spec.get("checkpoint"):
            return cls.from_checkpoint(spec["checkpoint"], backend=backend)
        raise ValueError(f"no model in {spec}: give --weights NAME or --checkpoint CKPT")

    @property
    def dim(self) -> int:
        """Embedding size."""
        return int(getattr(self.model, "embedding_dim"))

    def _make_fn(self) -> EmbedFn:
        if self.backend == "onnx":
            return OnnxEmbedFn(onnx_bytes(self.model, self.image_size))
        if self.backend == "torch":
            return model_embed_fn(self.model)
        # a copy: converting in place would change the caller's model
        run = model_embed_fn(copy.deepcopy(self.model).to(memory_format=torch.channels_last))
        return lambda x: run(x.contiguous(memory_format=torch.channels_last))

    def embed(self, images: Sequence[ImageInput] | torch.Tensor, batch_size: int = 32, flip: bool = False) -> np.ndarray:
        """(N, D) embeddings; with ``flip``, (N, 2D) rows [emb(x) ‖ emb(mirrored x)] as davidsandberg's LFW script."""
        return embed(self._fn, images, self.image_size, batch_size, flip)

    def embed_paths(self, paths: Sequence[Path], batch_size: int = 32, flip: bool = False,
                    on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
        """Embed files, skipping unreadable ones: (embeddings, embedded paths, [(failed path, reason)])."""
        return embed_paths(self._fn, paths, self.image_size, batch_size, flip, on_batch)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The backend on an already standardized (N, 3, S, S) batch."""
        return self._fn(x)

    def export_onnx(self, path: str | Path) -> Path:
        """Write this model as ONNX with a dynamic batch axis."""
        return export_onnx(self.model, path, self.image_size)
