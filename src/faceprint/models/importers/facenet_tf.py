"""Convert davidsandberg's frozen Inception-ResNet-v1 graph into our ``inception_resnet_v1`` state dict.

The frozen graph folds batch norm into the convolutions (``Conv2D`` → ``BiasAdd`` with a
``*_bn_offset``); the equivalent torch layer keeps its batch norm as the identity plus that offset:
weight 1, bias = offset, running mean 0, running variance 1 − eps.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from faceprint.backbones.inception_resnet_v1 import InceptionResnetV1
from faceprint.home import file_sha256
from faceprint.models.importers.tf_graph import GraphDefError, TfNode, read_graph_def
from faceprint.models.known import WeightsError

__all__ = ["BN_EPS", "convert_facenet_graph", "graph_input_size", "import_tf_graph"]

BN_EPS = 0.001
_STEM = {f"Conv2d_{k}": f"conv2d_{k.split('_')[0]}" for k in ("1a_3x3", "2a_3x3", "2b_3x3", "3b_1x1", "4a_3x3", "4b_3x3")}
_REPEATS = {"Repeat": "repeat_1", "Repeat_1": "repeat_2", "Repeat_2": "repeat_3"}
_SCOPE = "InceptionResnetV1/"


def _const(nodes: dict[str, TfNode], name: str) -> np.ndarray:
    node = nodes.get(name.split(":")[0].lstrip("^"))
    if node is None or node.op != "Const" or not isinstance(node.attr.get("value"), np.ndarray):
        raise GraphDefError(f"expected a constant tensor {name!r}")
    return node.attr["value"]


def _block_prefix(parts: list[str]) -> tuple[str, list[str]]:
    """Torch module prefix for a TF scope path (without the leading scope) and the remaining parts."""
    if parts[0] in _STEM:
        return _STEM[parts[0]], parts[1:]
    if parts[0] in _REPEATS:
        index = int(parts[1].rsplit("_", 1)[1]) - 1
        return f"{_REPEATS[parts[0]]}.{index}", parts[2:]
    if parts[0] in ("Mixed_6a", "Mixed_7a", "Block8"):
        return parts[0].lower(), parts[1:]
    raise GraphDefError(f"unexpected layer {'/'.join(parts)} in an Inception-ResNet-v1 graph")


def _conv_layers(nodes: dict[str, TfNode]) -> list[tuple[str, np.ndarray, np.ndarray, bool]]:
    """(TF layer path, HWIO weight, bias or bn offset, folded-bn?) for every convolution."""
    consumers: dict[str, list[TfNode]] = defaultdict(list)
    for node in nodes.values():
        for inp in node.inputs:
            consumers[inp.split(":")[0].lstrip("^")].append(node)
    layers = []
    for node in nodes.values():
        if node.op != "Conv2D":
            continue
        if node.attr.get("data_format", "NHWC") != "NHWC" or node.attr.get("dilations", [1] * 4) != [1, 1, 1, 1]:
            raise GraphDefError(f"{node.name}: only NHWC, undilated convolutions are supported")
        adds = [c for c in consumers[node.name] if c.op == "BiasAdd"]
        if len(adds) != 1:
            raise GraphDefError(f"{node.name}: expected one BiasAdd after the convolution")
        bias = _const(nodes, adds[0].inputs[1])
        layers.append((node.name.rsplit("/", 1)[0], _const(nodes, node.inputs[1]), bias, "bn_offset" in adds[0].inputs[1]))
    return layers


def graph_input_size(nodes: dict[str, TfNode]) -> int:
    """The square input size of the graph's image placeholder (160 for the released models)."""
    shapes = [n.attr.get("shape") for n in nodes.values() if n.op == "Placeholder"]
    shapes = [s for s in shapes if isinstance(s, list) and len(s) == 4]
    if len(shapes) != 1 or shapes[0][1] != shapes[0][2] or shapes[0][3] != 3:
        raise GraphDefError(f"expected one (N, S, S, 3) image input, found shapes {shapes}")
    return int(shapes[0][1])


def convert_facenet_graph(nodes: dict[str, TfNode]) -> tuple[dict[str, torch.Tensor], int]:
    """Our ``InceptionResnetV1`` state dict and embedding size from a parsed frozen graph.

    Every tensor of the torch model must be filled exactly once with a matching shape, or
    :class:`GraphDefError` says which is missing or extra.
    """
    if not any(name.startswith(_SCOPE) for name in nodes):
        raise GraphDefError("no InceptionResnetV1/ layers: not a davidsandberg FaceNet graph")
    state: dict[str, np.ndarray] = {}
    branches: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = defaultdict(list)
    for path, weight, bias, folded in _conv_layers(nodes):
        prefix, rest = _block_prefix(path[len(_SCOPE):].split("/"))
        torch_w = np.ascontiguousarray(weight.transpose(3, 2, 0, 1))
        if not folded:  # the residual projection: a plain conv with bias
            if rest != ["Conv2d_1x1"]:
                raise GraphDefError(f"{path}: unexpected unfolded convolution")
            state[f"{prefix}.conv2d.weight"], state[f"{prefix}.conv2d.bias"] = torch_w, bias
        elif not rest:
            _put_conv(state, prefix, torch_w, bias)
        elif len(rest) == 2 and re.fullmatch(r"Branch_\d", rest[0]):
            branches[f"{prefix}.branch{rest[0][-1]}"].append((rest[1], torch_w, bias))
        else:
            raise GraphDefError(f"{path}: unexpected layer")
    for prefix, convs in branches.items():
        convs.sort(key=lambda c: c[0].split("_")[1])  # Conv2d_0a < 0b < 0c < 1a: the order of application
        if len(convs) == 1:
            _put_conv(state, prefix, convs[0][1], convs[0][2])
        else:
            for i, (_, w, b) in enumerate(convs):
                _put_conv(state, f"{prefix}.{i}", w, b)
    linear = _const(nodes, "InceptionResnetV1/Bottleneck/weights")
    state["last_linear.weight"] = np.ascontiguousarray(linear.T)
    bn = "InceptionResnetV1/Bottleneck/BatchNorm/"
    fused = nodes.get(bn + "cond/FusedBatchNorm_1")
    if fused is None or fused.op != "FusedBatchNorm":
        raise GraphDefError("missing the bottleneck batch norm")
    gamma, beta, mean, var = (_const(nodes, i) for i in fused.inputs[1:5])
    eps = float(fused.attr.get("epsilon", BN_EPS))
    # our last_bn uses eps 1e-3; fold any difference into the variance
    state.update({"last_bn.weight": gamma, "last_bn.bias": beta, "last_bn.running_mean": mean,
                  "last_bn.running_var": var + (eps - BN_EPS)})
    embedding_dim = int(linear.shape[1])
    return _checked(state, embedding_dim), embedding_dim


def _put_conv(state: dict[str, np.ndarray], prefix: str, weight: np.ndarray, offset: np.ndarray) -> None:
    if f"{prefix}.conv.weight" in state:
        raise GraphDefError(f"two convolutions map to {prefix}")
    n = weight.shape[0]
    state[f"{prefix}.conv.weight"] = weight
    state[f"{prefix}.bn.weight"] = np.ones(n, np.float32)
    state[f"{prefix}.bn.bias"] = offset
    state[f"{prefix}.bn.running_mean"] = np.zeros(n, np.float32)
    state[f"{prefix}.bn.running_var"] = np.full(n, 1.0 - BN_EPS, np.float32)


def _checked(state: dict[str, np.ndarray], embedding_dim: int) -> dict[str, torch.Tensor]:
    reference = InceptionResnetV1(embedding_dim=embedding_dim).state_dict()
    missing = [k for k in reference if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in reference]
    if missing or extra:
        raise GraphDefError(f"graph does not match Inception-ResNet-v1: missing {missing[:3]}, extra {extra[:3]}")
    out = {}
    for key, ref in reference.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros_like(ref)
            continue
        value = torch.from_numpy(np.asarray(state[key], dtype=np.float32))
        if value.shape != ref.shape:
            raise GraphDefError(f"{key}: graph shape {tuple(value.shape)} != model shape {tuple(ref.shape)}")
        out[key] = value
    return out


def import_tf_graph(graph: str | Path, name: str = "casia-webface") -> Path:
    """Convert a davidsandberg frozen Inception-ResNet-v1 ``.pb`` into the cache under ``name``."""
    from faceprint.models.weights_store import PretrainedInfo, save_pretrained

    graph = Path(graph)
    if not graph.is_file():
        raise WeightsError(f"{graph} does not exist")
    try:
        nodes = read_graph_def(graph)
        state, dim = convert_facenet_graph(nodes)
        size = graph_input_size(nodes)
    except GraphDefError as exc:
        raise WeightsError(f"cannot import {graph}: {exc}") from exc
    info = PretrainedInfo(name=name, embedding_dim=dim, image_size=size, source=graph.name,
                          source_sha256=file_sha256(graph),
                          notes="davidsandberg/facenet frozen graph; batch norm folded into the convolutions")
    return save_pretrained(state, info)
