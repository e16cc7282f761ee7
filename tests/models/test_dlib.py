"""dlib's face-recognition ResNet read without dlib: equal to dlib's own descriptor, cut like dlib's chip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceprint.align import MTCNN, umeyama
from faceprint.align.crop import DLIB150_TEMPLATE, DLIB_5POINT_TEMPLATE
from faceprint.backbones import create_backbone
from faceprint.data.images import load_rgb
from faceprint.models import Embedder, FaceEmbedder, WeightsError
from faceprint.models.importers import import_dlib, read_dlib_resnet

DAT = "weights/dlib/dlib_face_recognition_resnet_model_v1.dat"
SP5 = "weights/dlib/shape_predictor_5_face_landmarks.dat"
FACES = ["Abdoulaye_Wade/Abdoulaye_Wade_0001.jpg", "Adam_Sandler/Adam_Sandler_0002.jpg", "Abdullah/Abdullah_0003.jpg",
         "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Adrien_Brody/Adrien_Brody_0002.jpg"]


@pytest.fixture(scope="module")
def dlib_parts(shared_data: Path) -> tuple:  # type: ignore[type-arg]
    dlib = pytest.importorskip("dlib")
    return (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(shared_data / SP5)),
            dlib.face_recognition_model_v1(str(shared_data / DAT)))


@pytest.fixture(scope="module")
def ours(shared_data: Path) -> torch.nn.Module:
    state, _ = read_dlib_resnet(shared_data / DAT)
    model = create_backbone("dlib_resnet", embedding_dim=128)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _dlib_chip(dlib_parts: tuple, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """dlib's own 150-px chip (HOG face, 5-point shape, padding 0.25) and the 5 points."""
    dlib, detector, predictor, _ = dlib_parts
    face = max(detector(image, 1), key=lambda r: r.area())
    shape = predictor(image, face)
    return np.asarray(dlib.get_face_chip(image, shape, 150, 0.25)), np.array([(p.x, p.y) for p in shape.parts()], float)


def test_module_equals_dlibs_descriptor_on_its_chips(shared_data: Path, dlib_parts: tuple, ours: torch.nn.Module) -> None:  # type: ignore[type-arg]
    net = dlib_parts[3]
    _, facts = read_dlib_resnet(shared_data / DAT)
    mean = torch.tensor(facts["mean"], dtype=torch.float32).view(3, 1, 1)
    chips = [_dlib_chip(dlib_parts, np.asarray(load_rgb(shared_data / "lfw/images" / f)))[0] for f in FACES]
    chips += [np.asarray(load_rgb(p).resize((150, 150))) for p in sorted((shared_data / "samples/aligned").rglob("*.png"))]
    x = (torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() - mean) / 256
    with torch.no_grad():
        got = ours.forward_head(ours.forward_features(x)).numpy()
    want = np.stack([np.array(net.compute_face_descriptor(c)) for c in chips])
    assert want.shape == (10, 128) and np.abs(want).max() > 0.1
    assert np.abs(got - want).max() < 1e-4  # measured 2.5e-7


def test_import_then_embedder_gives_dlibs_vector_normalised(shared_data: Path, dlib_parts: tuple, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[type-arg]
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path))
    import_dlib(shared_data / DAT)
    embedder = Embedder.from_pretrained("dlib-resnet")
    assert (embedder.image_size, embedder.dim, embedder.align) == (150, 128, "dlib150")
    chip = _dlib_chip(dlib_parts, np.asarray(load_rgb(shared_data / "lfw/images" / FACES[0])))[0]
    want = np.array(dlib_parts[3].compute_face_descriptor(chip))
    np.testing.assert_allclose(embedder.embed([chip])[0], want / np.linalg.norm(want), atol=1e-5)


def test_damaged_files_are_refused_with_the_offset(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / DAT).read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"at byte \d+"):
        read_dlib_resnet(cut)
    other = tmp_path / "other.dat"
    other.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(WeightsError, match="not dlib's face-recognition ResNet"):
        read_dlib_resnet(other)
    with pytest.raises(WeightsError, match="not dlib's face-recognition ResNet"):
        read_dlib_resnet(shared_data / SP5)  # dlib's other model is not this network


def test_our_chip_lands_where_dlibs_does(shared_data: Path, dlib_parts: tuple) -> None:  # type: ignore[type-arg]
    """MTCNN's points on DLIB150_TEMPLATE give dlib's chip: corners and centre within a few pixels of 150."""
    dlib_chip_points = (0.25 + DLIB_5POINT_TEMPLATE) / 1.5 * 150
    mtcnn, grid, offsets = MTCNN(), np.array([[0, 0], [150, 0], [0, 150], [150, 150], [75, 75]], float), []
    for f in FACES + ["Adam_Sandler/Adam_Sandler_0001.jpg", "Abdullah/Abdullah_0001.jpg"]:
        img = load_rgb(shared_data / "lfw/images" / f)
        _, parts = _dlib_chip(dlib_parts, np.asarray(img))
        det = mtcnn.detect(img)[0]
        k = int(np.argmin(np.linalg.norm(det.landmarks.mean(1) - parts.mean(0), axis=1)))
        to_dlib = umeyama(parts, dlib_chip_points)  # image → dlib's chip
        ours_inv = np.linalg.inv(np.vstack([umeyama(det.landmarks[k], DLIB150_TEMPLATE), [0, 0, 1]]))  # our chip → image
        through = (np.c_[grid, np.ones(5)] @ ours_inv.T)[:, :2] @ to_dlib[:, :2].T + to_dlib[:, 2]
        offsets.append(np.linalg.norm(through - grid, axis=1).mean())
    assert np.median(offsets) < 8.0, offsets  # measured: median 5.1 px on 993 LFW faces (benchmarks/dlib_template.py)
    # and the pipeline cuts exactly that chip for a dlib150 model (not a margin crop, not the ArcFace template)
    from faceprint.align.crop import similarity_align

    faces = FaceEmbedder(Embedder(create_backbone("dlib_resnet"), 150, align="dlib150"), mtcnn=mtcnn)
    img = load_rgb(shared_data / "lfw/images" / FACES[0])
    got = np.asarray(faces.crops(img)[0].image, np.float64)
    want = np.asarray(similarity_align(img, mtcnn.detect(img)[0].landmarks[0], 150, DLIB150_TEMPLATE), np.float64)
    assert got.shape == (150, 150, 3) and np.array_equal(got, want)
    assert np.abs(got - np.asarray(similarity_align(img, mtcnn.detect(img)[0].landmarks[0], 150), np.float64)).mean() > 10


def test_converted_from_an_installed_face_recognition_models(shared_data: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "site" / "face_recognition_models"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('faceprint must not import this package')\n")
    (pkg / "models" / "dlib_face_recognition_resnet_model_v1.dat").symlink_to(shared_data / DAT)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "FACEPRINT_HOME": str(tmp_path / "home")}
    code = "from faceprint.models import Embedder; e = Embedder.from_pretrained('dlib-resnet'); print(e.dim, e.align)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    said = out.stderr.replace("\n", "")
    assert out.stdout.split() == ["128", "dlib150"] and f"converted dlib-resnet from {pkg}" in said


def test_stream_decodes_dlibs_integers_and_floats() -> None:
    """Hand-encoded values: control byte (count | 0x80 for negative) then little-endian bytes; float = m · 2^e."""
    from faceprint.models.importers.dlib_dnn import _Stream

    s = _Stream(bytes([0x01, 0x00, 0x02, 0x2C, 0x01, 0x81, 0x05, 0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C, 0x01, 0x03]) + b"abc1")
    assert [s.int(), s.int(), s.int()] == [0, 300, -5]
    assert s.float() == 10737418 * 2.0**-28 and s.pos == 13  # dlib's loss margin 0.04, as stored in the file
    assert s.str() == "abc" and s.bool() is True
    with pytest.raises(WeightsError, match="file ends early"):
        s.int()
    with pytest.raises(WeightsError, match="bad integer control byte"):
        _Stream(bytes([0x09, 0, 0])).int()


def test_the_reader_refuses_negative_lengths_and_sizes() -> None:
    """b"\\x81\\x05abcdefgh" is a string of length −5: refused with the one-line error, the cursor left where it was
    (it once read back 'abcde' and moved the cursor to −3). Negative tensor and alias sizes are refused too, even
    when two of them would multiply to a positive count."""
    from faceprint.models import WeightsError
    from faceprint.models.importers.dlib_dnn import _Stream

    s = _Stream(b"\x81\x05abcdefgh")
    with pytest.raises(WeightsError, match=r"negative string length -5 at byte 0"):
        s.str()
    assert s.pos == 0
    with pytest.raises(WeightsError, match="past the end"):
        _Stream(b"\x01\x09abc").str()
    two = bytes([0x01, 0x02])
    shape = bytes([0x81, 0x02, 0x81, 0x02, 0x01, 0x01, 0x01, 0x01])  # −2 × −2 × 1 × 1 = 4 floats
    with pytest.raises(WeightsError, match="negative tensor size -2"):
        _Stream(two + shape + b"\0" * 16).tensor()
    with pytest.raises(WeightsError, match="negative alias size -2"):
        _Stream(bytes([0x01, 0x01]) + shape).alias()
