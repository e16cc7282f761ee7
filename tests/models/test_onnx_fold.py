"""Quantized weights folded once at import: the folded graph gives onnxruntime's own dequantized answer."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from faceprint.models.importers.onnx_fold import dequantize, fold_weight_dequantization  # noqa: E402


def _dq_model(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int, block: int) -> bytes:
    """A graph whose only node dequantizes constant int8 weights: what onnxruntime computes is the oracle."""
    attrs = {"axis": axis, **({"block_size": block} if block else {})}
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], **attrs)
    graph = helper.make_graph([node], "dq", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(x, "x"), numpy_helper.from_array(scale, "s"),
                               numpy_helper.from_array(zp, "z")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10).SerializeToString()


@pytest.mark.parametrize(("axis", "block", "scale_shape"), [(0, 0, (6,)), (1, 0, (4,)), (0, 4, (2, 4)), (1, 2, (6, 2))])
def test_dequantize_equals_onnxruntime(axis: int, block: int, scale_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(axis * 10 + block)
    x = rng.integers(-128, 127, (6, 4)).astype(np.int8)  # block 4 along axis 0: two blocks, the last one short
    scale = rng.uniform(0.01, 0.1, scale_shape).astype(np.float32)
    zp = rng.integers(-5, 5, scale_shape).astype(np.int8)
    want = ort.InferenceSession(_dq_model(x, scale, zp, axis, block), providers=["CPUExecutionProvider"]).run(None, {})[0]
    np.testing.assert_allclose(dequantize(x, scale, zp, axis, block), want, rtol=0, atol=1e-7)


def test_a_block_quantized_conv_folds_to_the_same_outputs() -> None:
    """Conv weights stored as int8 in blocks of 2 input channels, reshaped by a constant shape (SFace's pattern)."""
    rng = np.random.default_rng(0)
    wq = rng.integers(-128, 127, (8, 4 * 3 * 3)).astype(np.int8)
    scale = rng.uniform(0.001, 0.02, (8, 18)).astype(np.float32)
    zp = rng.integers(-3, 3, (8, 18)).astype(np.int8)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wflat"], axis=1, block_size=2),
             helper.make_node("Reshape", ["wflat", "wshape"], ["w"]),
             helper.make_node("Conv", ["data", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c"], ["out"])]
    inits = [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(scale, "ws"), numpy_helper.from_array(zp, "wz"),
             numpy_helper.from_array(np.array([8, 4, 3, 3], np.int64), "wshape")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 4, 5, 5])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 200])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    original = model.SerializeToString()
    assert fold_weight_dequantization(model) == 1
    ops = {n.op_type for n in model.graph.node}
    assert ops == {"Conv", "Flatten"} and {t.name for t in model.graph.initializer} == {"w"}
    x = rng.normal(0, 1, (3, 4, 5, 5)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]  # noqa: E731
    np.testing.assert_allclose(run(model.SerializeToString()), run(original), rtol=1e-6, atol=1e-6)


def test_float_models_and_activation_quantized_models_are_left_alone() -> None:
    """A float graph with a Reshape of a constant (a PRelu slope) is not touched (folding it alone once left the node
    and its output defined twice); a graph quantizing activations (QDQ) keeps its pairs for onnxruntime's kernels."""
    slope = numpy_helper.from_array(np.full((3,), 0.25, np.float32), "slope")
    shape = numpy_helper.from_array(np.array([3, 1, 1], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["slope", "shape"], ["s3"]), helper.make_node("PRelu", ["data", "s3"], ["out"])]
    graph = helper.make_graph(nodes, "p", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, 2, 2])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 3, 2, 2])], [slope, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    before = model.SerializeToString()
    assert fold_weight_dequantization(model) == 0 and model.SerializeToString() == before
    onnx.checker.check_model(model)
    x = np.random.default_rng(1).normal(0, 1, (2, 3, 2, 2)).astype(np.float32)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]
    np.testing.assert_allclose(got, np.where(x > 0, x, 0.25 * x), atol=1e-7)

    q = [helper.make_node("QuantizeLinear", ["data", "qs", "qz"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "qs", "qz"], ["dq"]),
         helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], axis=0),
         helper.make_node("Conv", ["dq", "w"], ["out"])]
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "qs"), numpy_helper.from_array(np.array(0, np.int8), "qz"),
             numpy_helper.from_array(np.ones((2, 3, 1, 1), np.int8), "wq"),
             numpy_helper.from_array(np.array([0.1, 0.2], np.float32), "ws")]
    graph = helper.make_graph(q, "qdq", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, 2, 2])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 2, 2, 2])], inits)
    qdq = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    assert fold_weight_dequantization(qdq) == 0 and {n.op_type for n in qdq.graph.node} >= {"QuantizeLinear"}


def test_weights_read_only_inside_a_subgraph_are_kept() -> None:
    """A weight an If branch reads (not any top-level node) survives the pruning of unused initializers."""
    from faceprint.models.importers.onnx_fold import names_read

    branch = lambda name: helper.make_graph(  # noqa: E731
        [helper.make_node("Add", ["data", name], ["y_" + name])], "b_" + name, [],
        [helper.make_tensor_value_info("y_" + name, TensorProto.FLOAT, None)])
    cond = helper.make_node("If", ["flag"], ["out"], then_branch=branch("w_then"), else_branch=branch("w_else"))
    graph = helper.make_graph([cond], "g", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [2]),
                                             helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.ones(2, np.float32), "w_then"),
                               numpy_helper.from_array(np.zeros(2, np.float32), "w_else")])
    assert {"w_then", "w_else", "flag", "data"} <= names_read(graph)
