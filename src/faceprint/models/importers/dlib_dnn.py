"""dlib's DNN serialization (``dlib_face_recognition_resnet_model_v1.dat``) read without dlib, into ``dlib_resnet``.

Encodings (dlib ``serialize.h``): an integer is a control byte (low nibble: byte count, 0x80: negative) and
that many little-endian bytes; a float is two integers, mantissa and exponent (value = mantissa · 2^exponent);
a string is a length and its bytes; a tensor is version 2, four dimensions, then raw float32 values.
The stream holds the loss layer, one version number per layer from the outside in, then each layer's
details from the input side out (tags and skips have none): that is the order ``DlibResNet.dlib_order`` gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceprint.home import file_sha256
from faceprint.models.known import WeightsError

__all__ = ["DLIB_MEAN", "import_dlib", "read_dlib_resnet"]

DLIB_MEAN = (122.782, 117.001, 104.298)
"""The RGB means of dlib's ``input_rgb_image_sized<150>`` (the file stores them too; they are checked)."""
_LAYERS_WITH_TAGS = 130  # add_layer / tag / skip wrappers around the 29 convolutions of anet_type


class _Stream:
    """A cursor over the file's bytes with dlib's decoders; every failure names its byte offset."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def fail(self, what: str) -> WeightsError:
        return WeightsError(f"not dlib's face-recognition ResNet: {what} at byte {self.pos}")

    def int(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("file ends early")
        control = self.data[self.pos]
        size = control & 0x0F
        if not 1 <= size <= 8 or self.pos + 1 + size > len(self.data):
            raise self.fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # dlib's markers for inf, -inf and NaN
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(np.float64(mantissa), exponent))

    def size(self, what: str) -> int:
        """A length or a dimension: never negative (a negative one would move the cursor back)."""
        at, value = self.pos, self.int()
        if value < 0:
            self.pos = at
            raise self.fail(f"negative {what} {value}")
        return value

    def str(self) -> str:
        n = self.size("string length")
        if self.pos + n > len(self.data):
            raise self.fail(f"string of {n} bytes past the end")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("latin-1")

    def bool(self) -> bool:
        value = self.data[self.pos : self.pos + 1]
        if value not in (b"0", b"1"):
            raise self.fail("bad boolean")
        self.pos += 1
        return value == b"1"

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise self.fail("unknown tensor version")
        shape = [self.size("tensor size") for _ in range(4)]
        count = int(np.prod(shape))
        if self.pos + 4 * count > len(self.data):
            raise self.fail(f"tensor of shape {shape} past the end")
        out = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return out

    def alias(self) -> list[int]:
        if self.int() != 1:
            raise self.fail("unknown alias-tensor version")
        return [self.size("alias size") for _ in range(4)]

    def expect(self, *versions: str) -> str:
        got = self.str()
        if got not in versions:
            raise self.fail(f"layer {got!r} where {' or '.join(versions)} belongs")
        return got


def _con(s: _Stream) -> dict[str, Any]:
    version = s.expect("con_4", "con_5", "con_6")
    params = s.tensor().ravel()
    filters, rows, cols = s.int(), s.int(), s.int()
    stride, padding = (s.int(), s.int()), (s.int(), s.int())
    shape, _ = s.alias(), s.alias()
    [s.float() for _ in range(4)]  # learning-rate and weight-decay multipliers
    use_bias = s.bool() if version in ("con_5", "con_6") else True
    if version == "con_6" and s.bool():
        raise s.fail("convolution with a fused relu")
    n = int(np.prod(shape))
    if len(params) != n + (filters if use_bias else 0) or shape[0] != filters:
        raise s.fail(f"convolution with {len(params)} parameters for filters {shape}")
    bias = params[n : n + filters] if use_bias else np.zeros(filters, np.float32)
    return {"weight": params[:n].reshape(shape), "bias": bias, "stride": stride, "padding": padding, "size": (rows, cols)}


def _affine(s: _Stream) -> dict[str, Any]:
    version = s.expect("affine_", "affine_2")
    params = s.tensor().ravel()
    gamma_shape, _ = s.alias(), s.alias()
    if s.int() != 0:
        raise s.fail("affine layer not in convolution mode")
    if version == "affine_2" and s.bool():
        raise s.fail("disabled affine layer")
    c = gamma_shape[1]
    if len(params) != 2 * c:
        raise s.fail(f"affine layer with {len(params)} parameters for {c} channels")
    return {"gamma": params[:c], "beta": params[c : 2 * c]}


def _fc(s: _Stream) -> dict[str, Any]:
    s.expect("fc_2")
    outputs, inputs = s.int(), s.int()
    params = s.tensor()
    if params.size != inputs * outputs:
        raise s.fail(f"fully connected layer with {params.size} weights for {inputs}×{outputs}")
    weight = params.reshape(inputs, outputs)
    s.alias(), s.alias()
    if s.int() != 1:
        raise s.fail("fully connected layer with a bias (expected fc_no_bias)")
    [s.float() for _ in range(4)]
    return {"weight": weight.T}


def _pool(s: _Stream, version: str, window: tuple[int, ...]) -> None:
    s.expect(version)
    got = tuple(s.int() for _ in range(6))  # rows, cols, stride y, stride x, padding y, padding x
    if got != window:
        raise s.fail(f"{version} {got} where {window} belongs")


def _relu(s: _Stream) -> None:
    if s.expect("relu_", "relu_2") == "relu_2" and s.bool():
        raise s.fail("disabled relu")


def _sequence(model: Any) -> list[tuple[str, Any]]:
    """dlib's layers from the input outwards (tags and skips carry no details): ("kind", module or None)."""
    steps: list[tuple[str, Any]] = [("con", model.stem_conv), ("affine", model.stem_affine), ("relu", None), ("max", None)]
    for block in model.blocks:
        steps += [("con", block.conv1), ("affine", block.affine1), ("relu", None), ("con", block.conv2),
                  ("affine", block.affine2), *([("avg", None)] if block.down else []), ("add", None), ("relu", None)]
    return [*steps, ("avg_all", None), ("fc", model.fc)]


def _read_layer(s: _Stream, kind: str, module: Any, name: str, state: dict[str, torch.Tensor]) -> None:
    if kind == "con":
        layer = _con(s)
        if (tuple(layer["weight"].shape), layer["stride"], layer["padding"]) != (
                tuple(module.weight.shape), module.stride, module.padding):
            raise s.fail(f"convolution {name}: shape {layer['weight'].shape}, stride {layer['stride']}, padding "
                         f"{layer['padding']} where {tuple(module.weight.shape)}, {module.stride}, {module.padding} belong")
        state[f"{name}.weight"], state[f"{name}.bias"] = torch.tensor(layer["weight"]), torch.tensor(layer["bias"])
    elif kind == "affine":
        layer = _affine(s)
        if layer["gamma"].shape != tuple(module.gamma.shape):
            raise s.fail(f"affine {name} has {layer['gamma'].shape[0]} channels where {module.gamma.shape[0]} belong")
        state[f"{name}.gamma"], state[f"{name}.beta"] = torch.tensor(layer["gamma"]), torch.tensor(layer["beta"])
    elif kind == "fc":
        weight = _fc(s)["weight"]
        if weight.shape != tuple(module.weight.shape):
            raise s.fail(f"fully connected layer of shape {weight.shape} where {tuple(module.weight.shape)} belongs")
        state[f"{name}.weight"] = torch.tensor(weight)
    elif kind == "relu":
        _relu(s)
    elif kind == "max":
        _pool(s, "max_pool_2", (3, 3, 2, 2, 0, 0))
    elif kind == "avg":
        _pool(s, "avg_pool_2", (2, 2, 2, 2, 0, 0))
    elif kind == "avg_all":
        _pool(s, "avg_pool_2", (0, 0, 1, 1, 0, 0))
    else:
        s.expect("add_prev_")


def read_dlib_resnet(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The ``dlib_resnet`` state dict and the file's facts (input means, size, loss margin and threshold)."""
    from faceprint.backbones.dlib_resnet import DlibResNet

    s = _Stream(Path(path).read_bytes())
    if s.int() != 1:
        raise s.fail("no loss layer")
    s.expect("loss_metric_2")
    facts: dict[str, Any] = {"margin": s.float(), "distance_threshold": s.float()}
    versions = [s.int() for _ in range(_LAYERS_WITH_TAGS)]
    if versions[-1] != 3 or set(versions) - {1, 2, 3}:
        raise s.fail("unexpected layer structure")
    s.expect("input_rgb_image_sized")
    facts["mean"] = [s.float() for _ in range(3)]
    facts["size"] = (s.int(), s.int())
    model = DlibResNet(128)
    names = {id(m): n for n, m in model.named_modules()}
    state: dict[str, torch.Tensor] = {}
    for k, (kind, module) in enumerate(_sequence(model)):
        _read_layer(s, kind, module, names.get(id(module), ""), state)
        [s.bool() for _ in range(3)]  # what add_layer writes after a layer: three flags, three (empty) tensors
        [s.tensor() for _ in range(3)]
        if k == 0 and s.int() != 1:  # the input wrapper's sample-expansion factor
            raise s.fail("bad sample expansion factor")
    if s.pos != len(s.data):
        raise s.fail(f"{len(s.data) - s.pos} bytes left over")
    return state, facts


def import_dlib(path: str | Path, name: str = "dlib-resnet") -> Path:
    """Convert dlib's face-recognition ResNet (``.dat``) into the cache under ``name`` (no dlib needed)."""
    from faceprint.models.weights_store import PretrainedInfo, save_pretrained

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    state, facts = read_dlib_resnet(path)
    if facts["size"] != (150, 150) or not np.allclose(facts["mean"], DLIB_MEAN, atol=1e-3):
        raise WeightsError(f"{path}: input {facts['size']} with means {facts['mean']}; expected 150×150 and {DLIB_MEAN}")
    info = PretrainedInfo(name=name, backbone="dlib_resnet", embedding_dim=128, image_size=150, align="dlib150",
                          preprocessing={"channels": "RGB", "mean": [float(m) for m in facts["mean"]], "scale": 1 / 256},
                          source=path.name, source_sha256=file_sha256(path),
                          notes=f"dlib face-recognition ResNet (CC0); metric loss margin {facts['margin']:.3g}, "
                                f"same-person distance {facts['distance_threshold']:.3g} on the raw descriptor")
    return save_pretrained(state, info)
