"""Any ONNX face embedder (ArcFace family, SFace, our own exports) into the cache, run by onnxruntime."""

from __future__ import annotations

import shutil
from pathlib import Path

from faceprint.home import file_sha256
from faceprint.io import atomic_path
from faceprint.models.known import WeightsError

__all__ = ["import_onnx", "onnx_signature"]


def onnx_signature(path: str | Path, input_size: int | None = None) -> tuple[int, int]:
    """(input side, embedding size) of an ONNX model with one (N, 3, S, S) input and one (N, D) output.

    A symbolic side is taken from ``input_size``; a batch axis fixed to one size is refused (faceprint
    embeds in batches).
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:  # optional dependency
        raise WeightsError("ONNX models need onnxruntime: pip install 'faceprint[onnx]'") from exc
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise WeightsError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from exc
    inputs, out = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise WeightsError(f"{path}: {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); expected one image batch")
    shape, oshape = list(inputs[0].shape), list(out[0].shape)
    side = {d for d in shape[2:] if isinstance(d, int)}
    if len(shape) != 4 or shape[1] != 3 or len(side) > 1 or (not side and input_size is None):
        raise WeightsError(f"{path}: input {inputs[0].name} has shape {shape}; expected (N, 3, S, S)"
                           + ("" if side else " (give --input-size for a symbolic S)"))
    if isinstance(shape[0], int):
        raise WeightsError(f"{path}: the batch axis is fixed to {shape[0]}; export the model with a dynamic batch axis")
    if len(oshape) != 2 or not isinstance(oshape[1], int):
        raise WeightsError(f"{path}: output {out[0].name} has shape {oshape}; expected (N, D)")
    return (side.pop() if side else int(input_size)), int(oshape[1])  # type: ignore[arg-type]


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
    size, dim = onnx_signature(path, input_size)
    if input_size is not None and input_size != size:
        raise WeightsError(f"{path} takes {size}×{size} inputs, not {input_size}")
    folder = pretrained_dir(name)
    with atomic_path(folder / ONNX_FILE) as tmp:
        shutil.copyfile(path, tmp)
    info = PretrainedInfo(name=name, backbone="onnx", embedding_dim=dim, image_size=size, format="onnx", align=align,
                          preprocessing={"channels": channels.upper(), "mean": mean, "scale": 1 / std},
                          source=path.name, source_sha256=file_sha256(path), notes="imported ONNX embedder")
    save_info(folder, info)
    return folder
