"""Weights stored quantized (int8 with block-wise scales, as OpenCV Zoo's ``*_int8bq`` files) are dequantized by
the graph on every run; folding them once at import gives float32 initializers and the same numbers, without the
per-run cost. Only DequantizeLinear nodes whose inputs are all initializers, and Reshapes of folded weights by a
constant shape, are folded; activations keep whatever quantization they have."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["dequantize", "fold_weight_dequantization"]


def dequantize(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int = 1,
               block_size: int = 0) -> np.ndarray:
    """ONNX DequantizeLinear: (x − zero_point) · scale, per tensor, per axis, or per block of ``block_size`` along
    ``axis`` (opset 21)."""
    x = x.astype(np.float32)
    zp = np.zeros_like(scale, np.float32) if zero_point is None else zero_point.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1 and x.ndim == 0:
        return (x - zp) * scale
    axis = axis % x.ndim
    if block_size:
        scale = np.repeat(scale, block_size, axis=axis).take(np.arange(x.shape[axis]), axis=axis)
        zp = np.repeat(zp, block_size, axis=axis).take(np.arange(x.shape[axis]), axis=axis)
        return (x - zp) * scale
    shape = [1] * x.ndim
    shape[axis] = -1
    return (x - zp.reshape(shape)) * scale.reshape(shape)


def fold_weight_dequantization(model: Any) -> int:
    """Fold constant DequantizeLinear (and Reshape-of-constant) nodes of an ``onnx.ModelProto`` in place; returns the
    number of weight tensors folded."""
    from onnx import numpy_helper

    graph = model.graph
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:  # Constant nodes hold shapes in some exports
        if node.op_type == "Constant" and len(node.output) == 1:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                consts[node.output[0]] = value
    folded, keep = 0, []
    for node in graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type == "DequantizeLinear" and inputs and all(i in consts for i in inputs):
            attrs = {a.name: a.i for a in node.attribute}
            arrays = [numpy_helper.to_array(consts[i]) for i in inputs]
            y = dequantize(arrays[0], arrays[1], arrays[2] if len(arrays) > 2 else None,
                           attrs.get("axis", 1), attrs.get("block_size", 0))
            consts[node.output[0]] = numpy_helper.from_array(y.astype(np.float32), node.output[0])
            graph.initializer.append(consts[node.output[0]])
            folded += 1
            continue
        if node.op_type == "Reshape" and len(inputs) == 2 and all(i in consts for i in inputs) and \
                numpy_helper.to_array(consts[inputs[0]]).dtype == np.float32:
            data, shape = numpy_helper.to_array(consts[inputs[0]]), numpy_helper.to_array(consts[inputs[1]])
            shape = [data.shape[k] if v == 0 else int(v) for k, v in enumerate(shape)]
            consts[node.output[0]] = numpy_helper.from_array(data.reshape(shape), node.output[0])
            graph.initializer.append(consts[node.output[0]])
            continue
        keep.append(node)
    if folded:
        del graph.node[:]
        graph.node.extend(keep)
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        kept = [t for t in graph.initializer if t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return folded
