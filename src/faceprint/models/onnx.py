"""ONNX export of embedding networks (dynamic batch axis) and an onnxruntime embedding function."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from faceprint.io import atomic_write_bytes

__all__ = ["OnnxEmbedFn", "export_onnx", "fastest_backend", "onnx_bytes"]


def fastest_backend() -> str:
    """``onnx`` when onnx and onnxruntime are installed (about 2x eager PyTorch on CPU), else ``torch``."""
    from importlib.util import find_spec

    return "onnx" if find_spec("onnx") is not None and find_spec("onnxruntime") is not None else "torch"


def onnx_bytes(model: torch.nn.Module, image_size: int, opset: int = 17) -> bytes:
    """Serialize ``model`` (eval mode) to ONNX: input ``images`` (N, 3, S, S), output ``embeddings`` (N, D)."""
    try:
        import onnx  # noqa: F401 - torch's exporter needs it
    except ImportError as exc:  # optional dependency
        raise ImportError("ONNX export needs the onnx package: pip install 'faceprint[onnx]'") from exc
    was_training = model.training
    model.eval()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(
                model, (torch.zeros(2, 3, image_size, image_size),), buf, input_names=["images"],
                output_names=["embeddings"], dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
                opset_version=opset, dynamo=False, do_constant_folding=True,
            )
    finally:
        model.train(was_training)
    return buf.getvalue()


def export_onnx(model: torch.nn.Module, path: str | Path, image_size: int, opset: int = 17) -> Path:
    """Write the ONNX model atomically to ``path``."""
    atomic_write_bytes(path, onnx_bytes(model, image_size, opset))
    return Path(path)


class OnnxEmbedFn:
    """Run an ONNX embedding model with onnxruntime (CPU); maps a standardized batch to embeddings."""

    def __init__(self, model: bytes | str | Path, threads: int | None = None, layout: str = "NCHW",
                 max_batch: int | None = None) -> None:
        """``layout``: the model's input order (NHWC models get the batch transposed); ``max_batch``: the most images
        one run takes (1 for a model whose graph only runs batches of one: the batch is fed image by image)."""
        try:
            import onnxruntime as ort
        except ImportError as exc:  # optional dependency
            raise ImportError("the onnx backend needs onnxruntime: pip install 'faceprint[onnx]'") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads() or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        source = str(model) if isinstance(model, (str, Path)) else model
        self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.layout, self.max_batch = layout.upper(), max_batch

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().cpu().numpy()
        if self.layout == "NHWC":
            arr = arr.transpose(0, 2, 3, 1)
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if len(arr) == 0 and self.max_batch:  # a model fixed at batch 1 refuses an empty batch: ask it for a shape
            return torch.from_numpy(self.session.run(None, {self.input_name: np.zeros((1, *arr.shape[1:]), np.float32)})[0][:0])
        step = self.max_batch or max(1, len(arr))
        parts = [self.session.run(None, {self.input_name: arr[i : i + step]})[0] for i in range(0, max(1, len(arr)), step)]
        return torch.from_numpy(np.concatenate(parts) if len(parts) > 1 else parts[0])
