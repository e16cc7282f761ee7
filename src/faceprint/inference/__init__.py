"""Inference: the ``Embedder`` API, ONNX export and the onnxruntime backend."""

from faceprint.inference.embedder import BACKENDS, Embedder
from faceprint.inference.onnx import OnnxEmbedFn, export_onnx, onnx_bytes

__all__ = ["BACKENDS", "Embedder", "OnnxEmbedFn", "export_onnx", "onnx_bytes"]
