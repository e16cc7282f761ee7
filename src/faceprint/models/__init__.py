"""The model layer: the weights cache and its importers, checkpoints read back, the Embedder and its
backends, and the detect → align → embed pipeline. Nothing here imports training, search, serve or the CLI.
"""

from faceprint.models.cache import PretrainedInfo, list_pretrained, load_pretrained, resolve_pretrained, save_pretrained
from faceprint.models.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, load_model
from faceprint.models.embed import FACENET, EmbedFn, Preprocess, embed, embed_paths, flip_combine, infer, pixel_embed_fn
from faceprint.models.embedder import BACKENDS, Embedder
from faceprint.models.known import DEFAULT_MODEL, KNOWN_WEIGHTS, WeightsError
from faceprint.models.onnx import OnnxEmbedFn, export_onnx, onnx_bytes
from faceprint.models.fusion import FusedEmbedder, FusedFaces, face_embedder
from faceprint.models.pipeline import FaceCrop, FaceEmbedder, center_crop, model_fingerprint, thumbnail

__all__ = [
    "BACKENDS", "DEFAULT_MODEL", "FACENET", "KNOWN_WEIGHTS", "CheckpointError", "EmbedFn", "Embedder", "FaceCrop",
    "FaceEmbedder", "FusedEmbedder", "FusedFaces", "OnnxEmbedFn", "Preprocess", "PretrainedInfo", "WeightsError", "center_crop", "embed", "embed_paths",
    "export_onnx", "face_embedder", "flip_combine", "infer", "latest_checkpoint", "list_pretrained", "load_checkpoint", "load_model",
    "load_pretrained", "model_fingerprint", "onnx_bytes", "pixel_embed_fn", "resolve_pretrained", "save_pretrained",
    "thumbnail",
]
