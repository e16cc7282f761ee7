"""Identity-folder data: scanning, robust loading, identity splits, P×K sampling, transforms, synthesis."""

from faceprint.data.dataset import FaceDataset, collate
from faceprint.data.folder import DatasetError, IdentityFolder, Skipped, scan_identity_folder
from faceprint.data.images import ImageLoadError, load_rgb, to_rgb
from faceprint.data.sampler import PKSampler
from faceprint.data.splits import IdentitySplit, split_by_identity
from faceprint.data.synth import write_synthetic_dataset
from faceprint.data.transforms import Augment, fixed_standardize

__all__ = [
    "Augment", "DatasetError", "FaceDataset", "IdentityFolder", "IdentitySplit", "ImageLoadError", "PKSampler",
    "Skipped", "collate", "fixed_standardize", "load_rgb", "scan_identity_folder", "split_by_identity",
    "to_rgb", "write_synthetic_dataset",
]
