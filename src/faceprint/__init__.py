"""faceprint: FaceNet-style face embeddings with triplet loss and online mining."""

from faceprint.align import MTCNN
from faceprint.backbones import EmbeddingNet, create_backbone, list_backbones
from faceprint.config import Config, ConfigError, apply_overrides, load_config
from faceprint.data import (
    DatasetError, IdentityFolder, ImageLoadError, PKSampler, load_rgb, scan_identity_folder, split_by_identity,
    write_synthetic_dataset,
)
from faceprint.distances import pairwise_distance
from faceprint.embedding import embed, infer, pixel_embed_fn
from faceprint.evaluation import (
    evaluate_folder, evaluate_identification, evaluate_pair_list, evaluate_verification, generate_pairs, read_lfw_pairs,
)
from faceprint.inference import Embedder, export_onnx
from faceprint.losses import TripletMarginLoss
from faceprint.miners import AllTripletsMiner, BatchHardMiner, create_miner
from faceprint.training import CheckpointError, Trainer, TrainingError, load_model, train

__version__ = "0.1.0"

__all__ = [
    "MTCNN", "AllTripletsMiner", "BatchHardMiner", "CheckpointError", "Config", "ConfigError", "DatasetError", "Embedder", "EmbeddingNet",
    "IdentityFolder", "ImageLoadError", "PKSampler", "Trainer", "TrainingError", "TripletMarginLoss", "apply_overrides",
    "create_backbone", "create_miner", "embed", "evaluate_folder", "evaluate_identification", "evaluate_pair_list",
    "evaluate_verification", "export_onnx", "generate_pairs", "infer", "list_backbones", "load_config", "load_model", "load_rgb",
    "pairwise_distance", "pixel_embed_fn", "read_lfw_pairs", "scan_identity_folder", "split_by_identity", "train",
    "write_synthetic_dataset",
]
