"""Face detection (MTCNN, pure torch) and alignment."""

from faceprint.align.crop import margin_crop, similarity_align, umeyama
from faceprint.align.detect import Detections, detect_faces
from faceprint.align.mtcnn import MTCNN
from faceprint.align.nets import ONet, PNet, RNet, load_mtcnn_nets
from faceprint.align.nms import batched_nms, nms

__all__ = [
    "MTCNN", "Detections", "ONet", "PNet", "RNet", "batched_nms", "detect_faces", "load_mtcnn_nets", "margin_crop", "nms",
    "similarity_align", "umeyama",
]
