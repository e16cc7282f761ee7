"""``Embedder``: a stable way to turn face images into embeddings with a trained, pretrained or imported model."""

from __future__ import annotations

import copy
import hashlib
import shutil
from collections.abc import Callable, Sequence
from typing import Any
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceprint.models.embed import FACENET, EmbedFn, ImageInput, Preprocess, embed, embed_paths, model_embed_fn
from faceprint.models.onnx import OnnxEmbedFn, export_onnx, onnx_bytes

__all__ = ["BACKENDS", "Embedder"]

BACKENDS = ("torch", "channels_last", "onnx")


# The fusion of several models (``a+b``) is built above this module (models/fusion.py imports ``Embedder``); it
# registers its factory here on import, so ``from_spec`` serves fused specs without importing upwards.
FUSIONS: list[Callable[[str, str], Any]] = []

class Embedder:
    """A model plus its input size, preprocessing, face alignment and inference backend.

    Images (paths, Pillow images, uint8 arrays) are resized to ``image_size`` and standardized with
    ``preprocess`` (FaceNet's (x − 127.5)/128 by default); outputs are L2-normalized float32 rows.
    ``align`` says how a face must be cut for this model (``margin``, ``arcface112`` or ``none``);
    ``faceprint.models.FaceEmbedder`` follows it. An imported ONNX model has no torch module
    (``model`` is None) and runs on onnxruntime.
    """

    def __init__(self, model: torch.nn.Module | None, image_size: int, name: str = "", backend: str = "torch",
                 preprocess: Preprocess = FACENET, align: str = "margin", onnx_file: Path | None = None,
                 dim: int | None = None, onnx_options: dict[str, Any] | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if model is None and onnx_file is None:
            raise ValueError("an Embedder needs a torch model or an ONNX file")
        self.model = model.eval() if model is not None else None
        self.image_size, self.name, self.preprocess, self.align = image_size, name, preprocess, align
        self.backend = backend if model is not None else "onnx"
        self.onnx_file, self.onnx_options = onnx_file, dict(onnx_options or {})  # layout, max_batch of an imported file
        self._dim = dim
        self._fn = self._make_fn()

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, backend: str = "torch") -> Embedder:
        """A model from the weights cache; a known model carried by an installed package is converted on first use."""
        from faceprint.models.cache import ONNX_FILE, load_pretrained, read_info, resolve_pretrained

        folder = resolve_pretrained(name_or_path)  # once: it may convert from an installed package
        info = read_info(folder)
        preprocess = Preprocess(info.mean, 1 / info.scale, info.bgr)
        if info.format == "onnx":
            return cls(None, info.image_size, info.name, "onnx", preprocess, info.align,
                       onnx_file=folder / ONNX_FILE, dim=info.embedding_dim,
                       onnx_options={k: info.preprocessing[k] for k in ("layout", "max_batch") if k in info.preprocessing})
        model, info = load_pretrained(folder)
        return cls(model, info.image_size, info.name, backend, preprocess, info.align)

    @classmethod
    def from_checkpoint(cls, path: str | Path, backend: str = "torch") -> Embedder:
        """A model trained by ``faceprint train`` (checkpoint file or run folder); it saw images as given, so no alignment."""
        from faceprint.models.checkpoint import load_model

        model, arch = load_model(path)
        return cls(model, arch["image_size"], f"{arch['backbone']} ({Path(path).name})", backend, align="none")

    @classmethod
    def from_spec(cls, spec: dict) -> Embedder:  # type: ignore[type-arg]
        """What an index or classifier file names: ``{"weights": name}`` or ``{"checkpoint": path}`` (+ ``backend``);
        ``{"weights": "a+b"}`` gives a ``FusedEmbedder``."""
        backend = spec.get("backend", "torch")
        if spec.get("weights") and "+" in str(spec["weights"]) and not Path(str(spec["weights"])).exists():
            return FUSIONS[0](str(spec["weights"]), backend)  # models/fusion.py, registered when faceprint.models loads
        if spec.get("weights"):
            return cls.from_pretrained(spec["weights"], backend=backend)
        if spec.get("checkpoint"):
            return cls.from_checkpoint(spec["checkpoint"], backend=backend)
        raise ValueError(f"no model in {spec}: give --weights NAME or --checkpoint CKPT")

    @property
    def dim(self) -> int:
        """Embedding size."""
        return self._dim if self.model is None else int(getattr(self.model, "embedding_dim"))  # type: ignore[return-value]

    def _make_fn(self) -> EmbedFn:
        if self.model is None:
            run = OnnxEmbedFn(self.onnx_file, **self.onnx_options)  # type: ignore[arg-type]
            return lambda x: F.normalize(run(x), dim=1)  # ArcFace-style exports give raw features
        if self.backend == "onnx":
            return OnnxEmbedFn(onnx_bytes(self.model, self.image_size))
        if self.backend == "torch":
            return model_embed_fn(self.model)
        # a copy: converting in place would change the caller's model
        run = model_embed_fn(copy.deepcopy(self.model).to(memory_format=torch.channels_last))
        return lambda x: run(x.contiguous(memory_format=torch.channels_last))

    def embed(self, images: Sequence[ImageInput] | torch.Tensor, batch_size: int = 32, flip: bool = False) -> np.ndarray:
        """(N, D) embeddings; with ``flip``, (N, 2D) rows by the flip rule ([x ‖ mirrored x], re-normalised)."""
        return embed(self._fn, images, self.image_size, batch_size, flip, self.preprocess)

    def embed_paths(self, paths: Sequence[Path], batch_size: int = 32, flip: bool = False,
                    on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
        """Embed whole image files, skipping unreadable ones: (embeddings, embedded paths, [(failed path, reason)])."""
        return embed_paths(self._fn, paths, self.image_size, batch_size, flip, on_batch, self.preprocess)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The backend on an already standardized (N, 3, S, S) batch."""
        return self._fn(x)

    def fingerprint(self) -> str:
        """A sha256 over the model's tensors (or its ONNX file): the identity of "the same model"."""
        if self.model is None:
            return hashlib.sha256(Path(self.onnx_file).read_bytes()).hexdigest()  # type: ignore[arg-type]
        digest = hashlib.sha256(type(self.model).__name__.encode())
        for key, value in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def export_onnx(self, path: str | Path) -> Path:
        """Write this model as ONNX with a dynamic batch axis."""
        if self.model is None:
            shutil.copyfile(self.onnx_file, path)  # type: ignore[arg-type]
            return Path(path)
        return export_onnx(self.model, path, self.image_size)
