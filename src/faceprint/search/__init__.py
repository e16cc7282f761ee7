"""Face search: a persistent index (SQLite + FAISS), detection-to-vector pipeline, queries."""

from faceprint.models.pipeline import FaceCrop, FaceEmbedder, model_fingerprint
from faceprint.search.index import (
    DEFAULT_THRESHOLD, AddReport, FaceIndex, build_index, calibrate_threshold, gallery_images, open_index,
)
from faceprint.search.store import KINDS, Face, FaceStore, IndexBusyError, IndexError_, IndexReplacedError, Match

__all__ = ["DEFAULT_THRESHOLD", "KINDS", "AddReport", "Face", "FaceCrop", "FaceEmbedder", "FaceIndex", "FaceStore",
           "IndexBusyError", "IndexError_", "IndexReplacedError", "Match", "build_index", "calibrate_threshold", "gallery_images",
           "model_fingerprint", "open_index"]
