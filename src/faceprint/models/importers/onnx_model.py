"""Any ONNX face embedder (ArcFace family, SFace, our own exports) into the cache, run by onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceprint.home import file_sha256
from faceprint.io import atomic_path
from faceprint.models.known import WeightsError

__all__ = ["as_shipped", "import_onnx", "onnx_signature"]


ONNX_IMPORTER = 3
"""Version of the as-shipped repairs, stored with each import (1 left a fixed batch axis in place when it also dropped
initializer inputs, so SFace ran one image at a time; 2 dequantized int8 weights on every run). A model imported by
an older version is not replaced on its own: its file is what an index's fingerprint names."""


def as_shipped(path: str | Path) -> tuple[bytes, dict[str, Any]]:
    """The model of ``path`` made loadable the way faceprint runs it, and what was changed.

    Published face models often ship with their batch axis fixed to 1 and with their weights (initializers) or
    unused tensors also listed as graph inputs, which onnxruntime then asks to be fed. Such inputs are dropped and a fixed
    batch axis is made symbolic; an NHWC input (N, S, S, 3) is recorded so the batch is transposed for it."""
    try:
        import onnx
    except ImportError as exc:  # optional dependency
        raise WeightsError("importing ONNX models needs onnx: pip install 'faceprint[onnx]'") from exc
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise their own types
        raise WeightsError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from exc
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    from faceprint.models.importers.onnx_fold import fold_weight_dequantization, names_read

    used = names_read(graph) | {o.name for o in graph.output}  # If/Loop bodies may read outer weights
    # weights listed as inputs too, and inputs no node reads (SFace's int8 file lists its float weights, which its
    # DequantizeLinear nodes replaced): onnxruntime would ask for every one of them to be fed
    real = [i for i in graph.input if i.name not in weights and i.name in used]
    dropped = len(graph.input) - len(real)
    if dropped:
        del graph.input[:]
        graph.input.extend(real)
        real = list(graph.input)  # extend copied the messages: edit the graph's own (a fixed batch below)
    kept = [t for t in graph.initializer if t.name in used]  # weights no node reads (onnxruntime warns on each load)
    if len(kept) < len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)
    facts: dict[str, Any] = {"dropped_initializer_inputs": dropped, "layout": "NCHW", "fixed_batch": None,
                             "folded_weights": fold_weight_dequantization(model)}
    if len(real) == 1:
        dims = real[0].type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(shape) == 4 and shape[3] == 3 and shape[1] != 3:
            facts["layout"] = "NHWC"
        if shape and shape[0]:  # a batch axis fixed to one size: made symbolic (input and outputs)
            facts["fixed_batch"] = shape[0]
            for value in [real[0], *graph.output]:
                d = value.type.tensor_type.shape.dim
                if len(d) and d[0].HasField("dim_value") and d[0].dim_value == shape[0]:
                    d[0].dim_param = "batch"  # setting the param clears the fixed value
            del graph.value_info[:]  # intermediate shape hints still carry the fixed batch: onnxruntime re-infers them
    return model.SerializeToString(), facts


def onnx_signature(model: str | Path | bytes, input_size: int | None = None, layout: str = "NCHW",
                   name: str = "model") -> tuple[int, int]:
    """(input side, embedding size) of an ONNX model with one (N, 3, S, S) input (``layout`` NHWC: (N, S, S, 3))
    and one (N, D) output. A symbolic side is taken from ``input_size``."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # optional dependency
        raise WeightsError("ONNX models need onnxruntime: pip install 'faceprint[onnx]'") from exc
    path = name if isinstance(model, bytes) else model
    try:
        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise WeightsError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from exc
    inputs, out = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise WeightsError(f"{path}: {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); expected one image batch")
    if len(out) != 1:
        raise WeightsError(f"{path}: {len(out)} outputs ({', '.join(o.name for o in out)}); expected one embedding")
    shape, oshape = list(inputs[0].shape), list(out[0].shape)
    nchw = layout.upper() == "NCHW"
    channels, spatial = (shape[1], shape[2:]) if nchw else (shape[3] if len(shape) == 4 else None, shape[1:3])
    side = {d for d in spatial if isinstance(d, int)}
    if len(shape) != 4 or channels != 3 or len(side) > 1 or (not side and input_size is None):
        want = "(N, 3, S, S)" if nchw else "(N, S, S, 3)"
        raise WeightsError(f"{path}: input {inputs[0].name} has shape {shape}; expected {want}"
                           + ("" if side else " (give --input-size for a symbolic S)"))
    if len(oshape) != 2 or not isinstance(oshape[1], int):
        raise WeightsError(f"{path}: output {out[0].name} has shape {oshape}; expected (N, D)")
    return (side.pop() if side else int(input_size)), int(oshape[1])  # type: ignore[arg-type]


def _batches_work(model: bytes, size: int, layout: str) -> bool:
    """Whether the graph runs a batch of two and gives what it gives image by image (a graph with the batch size
    built into a Reshape does not: it is then fed one image at a time)."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).normal(0, 1, (2, 3, size, size)).astype(np.float32)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    try:
        both = session.run(None, {name: x})[0]
    except Exception:  # noqa: BLE001 - the runtime's own error types: the graph cannot take two
        return False
    one = np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(2)])
    return both.shape == one.shape and bool(np.allclose(both, one, rtol=1e-4, atol=1e-5))


def import_onnx(path: str | Path, name: str, input_size: int | None = None, mean: float = 127.5, std: float = 127.5,
                align: str = "arcface112", channels: str = "RGB") -> Path:
    """Copy an ONNX embedder into the cache with its preprocessing: (x − mean)/std and how faces are cut.

    ``align``: ``arcface112`` (5-point similarity to the ArcFace template, scaled to the input size),
    ``margin`` (MTCNN box grown by 20 % of the input side, FaceNet style) or ``none`` (images are already face crops).
    """
    from faceprint.models.weights_store import ALIGNMENTS, ONNX_FILE, PretrainedInfo, pretrained_dir, save_info

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    if align not in ALIGNMENTS:
        raise WeightsError(f"unknown alignment {align!r}; choose from {', '.join(ALIGNMENTS)}")
    if std <= 0:
        raise WeightsError(f"--std must be positive, got {std}")
    if channels.upper() not in ("RGB", "BGR"):
        raise WeightsError(f"channels must be RGB or BGR, got {channels!r}")
    data, facts = as_shipped(path)
    size, dim = onnx_signature(data, input_size, facts["layout"], str(path))
    if input_size is not None and input_size != size:
        raise WeightsError(f"{path} takes {size}×{size} inputs, not {input_size}")
    preprocessing: dict[str, Any] = {"channels": channels.upper(), "mean": mean, "scale": 1 / std, "layout": facts["layout"],
                                     "importer": ONNX_IMPORTER}
    if not _batches_work(data, size, facts["layout"]):
        preprocessing["max_batch"] = 1
    folder = pretrained_dir(name)
    with atomic_path(folder / ONNX_FILE) as tmp:
        tmp.write_bytes(data)
    notes = "imported ONNX embedder" + "".join(
        f"; {what}" for what, done in ((f"{facts['dropped_initializer_inputs']} initializer inputs dropped",
                                        facts["dropped_initializer_inputs"]),
                                       (f"{facts['folded_weights']} quantized weights dequantized once (float32)",
                                        facts["folded_weights"]),
                                       (f"batch axis fixed to {facts['fixed_batch']} made symbolic", facts["fixed_batch"]),
                                       ("NHWC input", facts["layout"] == "NHWC"),
                                       ("run one image at a time", "max_batch" in preprocessing)) if done)
    info = PretrainedInfo(name=name, backbone="onnx", embedding_dim=dim, image_size=size, format="onnx", align=align,
                          preprocessing=preprocessing, source=path.name, source_sha256=file_sha256(path), notes=notes)
    save_info(folder, info)
    return folder
