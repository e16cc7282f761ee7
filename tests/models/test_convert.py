"""davidsandberg's frozen graph → our Inception-ResNet-v1: same embeddings as OpenCV's DNN on the same .pb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceprint.backbones import create_backbone
from faceprint.models.importers import GraphDefError, convert_facenet_graph, graph_input_size, read_graph_def
from faceprint.models.importers.tf_graph import TfNode
from tests.models.protobuf import strip_control_inputs

GRAPH = "weights/facenet-casia-webface/20180408-102900.pb"


@pytest.fixture(scope="module")
def graph_path(shared_data: Path) -> Path:
    path = shared_data / GRAPH
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def nodes(graph_path: Path) -> dict[str, TfNode]:
    return read_graph_def(graph_path)


@pytest.fixture(scope="module")
def converted(nodes: dict[str, TfNode]) -> torch.nn.Module:
    state, dim = convert_facenet_graph(nodes)
    model = create_backbone("inception_resnet_v1", embedding_dim=dim)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _sample_faces(shared_data: Path) -> np.ndarray:
    paths = sorted((shared_data / "samples" / "aligned").glob("*/1.png"))
    assert len(paths) == 5
    x = np.stack([np.asarray(Image.open(p).convert("RGB").resize((160, 160)), np.float32) for p in paths])
    return np.ascontiguousarray(((x - 127.5) / 128).transpose(0, 3, 1, 2))


def test_graph_facts(nodes: dict[str, TfNode]) -> None:
    params = sum(n.attr["value"].size for n in nodes.values() if n.op == "Const" and isinstance(n.attr.get("value"), np.ndarray))
    assert params == 23_469_414  # the README's count for this graph
    assert graph_input_size(nodes) == 160


def test_same_embeddings_as_opencv_dnn(shared_data: Path, graph_path: Path, converted: torch.nn.Module, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    # OpenCV >= 4.9 rejects the graph's control-dependency inputs on constants (4.8.1 reads the file as is and
    # gives bitwise the same outputs as 4.14 on the stripped copy); they order execution and change no value.
    stripped = tmp_path / "graph.pb"
    stripped.write_bytes(strip_control_inputs(graph_path.read_bytes()))
    net = cv2.dnn.readNetFromTensorflow(str(stripped))
    x = _sample_faces(shared_data)
    ref = []
    for i in range(len(x)):  # the graph's reshape fixes the batch at 1
        net.setInput(x[i : i + 1])
        ref.append(net.forward()[0])
    with torch.no_grad():
        ours = converted(torch.from_numpy(x)).numpy()
    assert np.abs(np.stack(ref) - ours).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # sanity: five different people are not near-duplicates
    sims = ours @ ours.T
    assert (sims[~np.eye(5, dtype=bool)] < 0.6).all()


def test_converted_batch_equals_single_images(shared_data: Path, converted: torch.nn.Module) -> None:
    x = torch.from_numpy(_sample_faces(shared_data))
    with torch.no_grad():
        batched = converted(x)
        single = torch.cat([converted(x[i : i + 1]) for i in range(len(x))])
    assert (batched - single).abs().max() <= 1e-5


def test_a_missing_layer_is_named(nodes: dict[str, TfNode]) -> None:
    broken = {k: v for k, v in nodes.items() if "block17_3/Branch_1/Conv2d_0b_1x7/Conv2D" not in k}
    with pytest.raises(GraphDefError, match="repeat_2.2.branch1"):
        convert_facenet_graph(broken)


def test_not_a_facenet_graph() -> None:
    with pytest.raises(GraphDefError, match="not a davidsandberg FaceNet graph"):
        convert_facenet_graph({"x": TfNode("x", "Const")})


def test_cli_import_tf_then_embed(graph_path: Path, shared_data: Path, converted: torch.nn.Module, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from faceprint.cli.main import app, main
    from faceprint.models import Embedder

    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exit_info:  # not imported yet: one line saying how
        main(["embed", str(shared_data / "samples" / "aligned"), "--weights", "casia-webface"])
    assert exit_info.value.code == 2
    result = CliRunner().invoke(app, ["weights", "import-tf", str(graph_path), "--name", "casia-webface"])
    assert result.exit_code == 0, result.output
    meta = __import__("json").loads((tmp_path / "home" / "weights" / "casia-webface" / "model.json").read_text())
    assert meta["source_sha256"].startswith("704afe26766c") and meta["embedding_dim"] == 512
    x = torch.from_numpy(_sample_faces(shared_data))
    with torch.no_grad():
        assert torch.equal(Embedder.from_pretrained("casia-webface")(x), converted(x))
