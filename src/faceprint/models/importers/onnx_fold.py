"""Weights stored quantized (int8 with block-wise scales, as OpenCV Zoo's ``*_int8bq`` files) are dequantized by
the graph on every run; folding them once at import gives float32 initializers and the same numbers, without the
per-run cost. Only DequantizeLinear nodes whose inputs are all initializers, and Reshapes of folded weights by a
constant shape, are folded; activations keep whatever quantization they have."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["dequantize", "fold_weight_dequantization", "names_read"]


def names_read(graph: Any) -> set[str]:
    """Every tensor name a node of ``graph`` reads, inside If/Loop/Scan bodies too (they may read outer weights)."""
    out: set[str] = set()
    for node in graph.node:
        out.update(node.input)
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                out |= names_read(sub)
    return out


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
    """Fold constant DequantizeLinear nodes of an ``onnx.ModelProto`` in place, and Reshapes of what they produced;
    returns the number of weight tensors folded. A graph that quantizes activations too (any QuantizeLinear) is left
    alone: onnxruntime fuses its DequantizeLinear pairs into integer kernels, which folding would undo."""
    from onnx import numpy_helper

    graph = model.graph
    if any(n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") for n in graph.node):
        return 0
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:  # Constant nodes hold shapes in some exports
        if node.op_type == "Constant" and len(node.output) == 1:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                consts[node.output[0]] = value
    made: set[str] = set()  # tensors this function computed: only their Reshapes are folded
    keep, folded = [], 0
    for node in graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type == "DequantizeLinear" and inputs and all(i in consts for i in inputs):
            attrs = {a.name: a.i for a in node.attribute}
            arrays = [numpy_helper.to_array(consts[i]) for i in inputs]
            y = dequantize(arrays[0], arrays[1], arrays[2] if len(arrays) > 2 else None,
                           attrs.get("axis", 1), attrs.get("block_size", 0)).astype(arrays[1].dtype)
            folded += 1
        elif node.op_type == "Reshape" and len(inputs) == 2 and inputs[0] in made and inputs[1] in consts:
            data, shape = numpy_helper.to_array(consts[inputs[0]]), numpy_helper.to_array(consts[inputs[1]])
            y = data.reshape([data.shape[k] if v == 0 else int(v) for k, v in enumerate(shape)])
        else:
            keep.append(node)
            continue
        consts[node.output[0]] = numpy_helper.from_array(y, node.output[0])
        graph.initializer.append(consts[node.output[0]])
        made.add(node.output[0])
    if made:
        del graph.node[:]
        graph.node.extend(keep)
        used = names_read(graph) | {o.name for o in graph.output}
        kept = [t for t in graph.initializer if t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return folded
