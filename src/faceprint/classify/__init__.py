"""Classification over known identities: heads on embeddings with an open-set "unknown" threshold."""

from faceprint.classify.classifier import UNKNOWN, ClassifierError, FaceClassifier, Prediction
from faceprint.classify.heads import HEADS, CentroidHead, SoftmaxHead, SvmHead, create_head

__all__ = ["HEADS", "UNKNOWN", "CentroidHead", "ClassifierError", "FaceClassifier", "Prediction", "SoftmaxHead",
           "SvmHead", "create_head"]
