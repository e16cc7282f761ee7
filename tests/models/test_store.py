"""The pretrained-weights cache: imports, strict loads, clear errors, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceprint.backbones import create_backbone
from faceprint.models import Embedder
from faceprint.models import PretrainedInfo, list_pretrained, load_pretrained, save_pretrained
from faceprint.models.importers import import_facenet_pytorch
from faceprint.models.cache import MODEL_FILE
from faceprint.models.importers import import_tf_graph
from faceprint.models import WeightsError


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _facenet_pytorch_file(tmp_path: Path, classes: int | None) -> tuple[Path, dict[str, torch.Tensor]]:
    """A file laid out like facenet-pytorch's released .pt (a plain state dict, logits included)."""
    torch.manual_seed(0)
    model = create_backbone("inception_resnet_v1", embedding_dim=512, num_classes=classes)
    for m in model.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("classes", [None, 7])
def test_facenet_pytorch_state_dict_imports_strictly(tmp_path: Path, classes: int | None) -> None:
    path, state = _facenet_pytorch_file(tmp_path, classes)
    import_facenet_pytorch(path, "vggface2")
    model, info = load_pretrained("vggface2")
    assert info.num_classes == classes and info.embedding_dim == 512 and info.source == path.name
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    emb = Embedder.from_pretrained("vggface2").embed([np.full((100, 90, 3), 128, np.uint8)])
    assert emb.shape == (1, 512)


def test_wrong_layout_is_refused_and_writes_nothing(tmp_path: Path, _cache: Path) -> None:
    path, state = _facenet_pytorch_file(tmp_path, None)
    state.pop("repeat_1.0.branch0.conv.weight")
    torch.save(state, path)
    with pytest.raises(WeightsError, match="does not match"):
        import_facenet_pytorch(path, "vggface2")
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(WeightsError, match="not a readable"):
        import_facenet_pytorch(bad)
    assert not (_cache / "weights" / "vggface2").exists()


def test_missing_name_says_how_to_import() -> None:
    with pytest.raises(WeightsError, match="import-tf"):
        Embedder.from_pretrained("casia-webface")
    with pytest.raises(WeightsError, match="import-pt"):
        load_pretrained("vggface2")


def test_roundtrip_and_listing(tmp_path: Path) -> None:
    model = create_backbone("small_cnn", embedding_dim=16).eval()
    info = PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32)
    folder = save_pretrained(model.state_dict(), info)
    assert [i.name for i in list_pretrained()] == ["tiny"]
    for ref in ("tiny", folder, folder / MODEL_FILE):
        loaded, got = load_pretrained(ref)
        assert got == info
        x = torch.randn(3, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))


def test_damaged_weights_are_a_clear_error() -> None:
    model = create_backbone("small_cnn", embedding_dim=16)
    folder = save_pretrained(model.state_dict(), PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16))
    data = (folder / MODEL_FILE).read_bytes()
    (folder / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="damaged"):
        load_pretrained("tiny")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden"])
def test_bad_names(name: str) -> None:
    with pytest.raises(WeightsError):
        load_pretrained(name)


def test_import_tf_rejects_a_non_graph(tmp_path: Path, _cache: Path) -> None:
    bad = tmp_path / "model.pb"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="cannot import"):
        import_tf_graph(bad, "casia-webface")
    with pytest.raises(WeightsError, match="does not exist"):
        import_tf_graph(tmp_path / "nope.pb")
    assert not (_cache / "weights" / "casia-webface").exists()
