"""Any ONNX face embedder (ArcFace family, SFace, our own exports) into the cache, run by onnxruntime."""

from __future__ import annotations

import shutil
from pathlib import Path

from faceprint.home import file_sha256
from faceprint.io import atomic_path
from faceprint.models.known import WeightsError

__all__ = ["import_onnx", "onnx_signature"]


def onnx_signature(path: str | Path) -> tuple[int, int]:
    """(input side, embedding size) of an ONNX model with one (N, 3, S, S) input and one (N, D) output."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # optional dependency
        raise WeightsError("ONNX models need onnxruntime: pip install 'faceprint[onnx]'") from exc
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise WeightsError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from exc
    (inp,), out = session.get_inputs(), session.get_outputs()
    shape, oshape = list(inp.shape), list(out[0].shape)
    if len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int) or shape[2] != shape[3]:
        raise WeightsError(f"{path}: input {inp.name} has shape {shape}; expected (N, 3, S, S)")
    if len(oshape) != 2 or not isinstance(oshape[1], int):
        raise WeightsError(f"{path}: output {out[0].name} has shape {oshape}; expected (N, D)")
    return int(shape[2]), int(oshape[1])


def import_onnx(path: str | Path, name: str, input_size: int | None = None, mean: float = 127.5, std: float = 127.5,
                align: str = "arcface112", channels: str = "RGB") -> Path:
    """Copy an ONNX embedder into the cache with its preprocessing: (x − mean)/std and how faces are cut.

    ``align``: ``arcface112`` (5-point similarity to the ArcFace template, scaled to the input size),
    ``margin`` (MTCNN box + 32 px margin, FaceNet style) or ``none`` (images are already face crops).
    """
    from faceprint.models.cache import ALIGNMENTS, ONNX_FILE, PretrainedInfo, pretrained_dir, save_info

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    if align not in ALIGNMENTS:
        raise WeightsError(f"unknown alignment {align!r}; choose from {', '.join(ALIGNMENTS)}")
    if std <= 0:
        raise WeightsError(f"--std must be positive, got {std}")
    if channels.upper() not in ("RGB", "BGR"):
        raise WeightsError(f"channels must be RGB or BGR, got {channels!r}")
    size, dim = onnx_signature(path)
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
