"""Training: the triplet trainer, checkpoints, optimizers and schedules."""

from faceprint.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, load_model, save_checkpoint
from faceprint.training.data_setup import PreparedData, prepare_data
from faceprint.training.trainer import NonFiniteLossError, TrainResult, Trainer, TrainingError, train

__all__ = [
    "CheckpointError", "NonFiniteLossError", "PreparedData", "TrainResult", "Trainer", "TrainingError",
    "latest_checkpoint", "load_checkpoint", "load_model", "prepare_data", "save_checkpoint", "train",
]
