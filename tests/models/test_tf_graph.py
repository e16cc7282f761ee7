"""The protobuf reader on hand-built GraphDefs: every encoding a frozen graph uses, and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.models.importers.tf_graph import GraphDefError, parse_graph_def, read_graph_def
from tests.models.protobuf import attr, const, field, node, shape, strip_control_inputs, varint


def test_constants_from_content_and_from_value_lists() -> None:
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5
    ints = np.array([1, -1, 300], dtype=np.int32)
    data = const("a", w) + const("b", w, as_content=False) + const("c", ints, as_content=False) + const("d", ints)
    nodes = parse_graph_def(data)
    assert list(nodes) == ["a", "b", "c", "d"]
    for name, expected in (("a", w), ("b", w), ("c", ints), ("d", ints)):
        value = nodes[name].attr["value"]
        assert value.dtype == expected.dtype and value.shape == expected.shape
        np.testing.assert_array_equal(value, expected)


def test_splatted_scalar_fills_the_shape() -> None:
    # TF stores a constant-filled tensor as one float_val with the full shape
    body = field(1, 1) + field(2, shape([2, 3])) + field(5, b"\x00\x00\x80\x3f")  # packed 1.0
    data = node("ones", "Const", attrs={"value": field(8, body)})
    np.testing.assert_array_equal(parse_graph_def(data)["ones"].attr["value"], np.ones((2, 3), np.float32))


def test_node_inputs_and_scalar_list_shape_attributes() -> None:
    attrs = {
        "strides": field(1, field(3, varint(1) + varint(2) + varint(2) + varint(1))),  # packed ints
        "padding": field(2, "SAME"),
        "epsilon": field(4, 0.001),
        "is_training": field(5, False),
        "T": field(6, 1),
        "shape": field(7, shape([1, 160, 160, 3])),
        "neg": field(3, -5),
    }
    data = node("conv", "Conv2D", ["input:0", "w", "^ctrl"], attrs)
    n = parse_graph_def(data)["conv"]
    assert n.op == "Conv2D" and n.inputs == ["input:0", "w", "^ctrl"]
    assert n.attr["strides"] == [1, 2, 2, 1] and n.attr["padding"] == "SAME"
    assert n.attr["epsilon"] == pytest.approx(0.001) and n.attr["is_training"] is False
    assert n.attr["T"] == 1 and n.attr["shape"] == [1, 160, 160, 3] and n.attr["neg"] == -5


def test_strip_control_inputs_keeps_everything_else() -> None:
    data = const("w", np.ones(3, np.float32)) + node("x", "Identity", ["w", "^w"], {"T": field(6, 1)})
    nodes = parse_graph_def(strip_control_inputs(data))
    assert nodes["x"].inputs == ["w"] and nodes["x"].attr == {"T": 1}
    np.testing.assert_array_equal(nodes["w"].attr["value"], np.ones(3, np.float32))


@pytest.mark.parametrize("data", [b"", b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05abc", b"\x0f\x00", b"hello world"])
def test_garbage_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(GraphDefError):
        parse_graph_def(data)


def test_truncated_file_names_the_path(tmp_path) -> None:
    good = const("w", np.ones((4, 4), np.float32)) + attr("x", b"")
    path = tmp_path / "cut.pb"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(GraphDefError, match="cut.pb"):
        read_graph_def(path)
