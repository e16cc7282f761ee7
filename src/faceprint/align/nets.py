"""MTCNN's P-, R- and O-Net (Zhang et al. 2016) with the parameter names of the shipped weights."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from faceprint.home import cache_dir

__all__ = ["WEIGHT_SHA256", "ONet", "PNet", "RNet", "default_mtcnn_folder", "load_mtcnn_nets"]

WEIGHT_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12×12 receptive field, stride 2. Returns (box reg, probs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """First convolution and PReLU (the mosaic masks cells of this map before pooling)."""
        return self.prelu1(self.conv1(x))

    def head(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything after the stem: pooling, two convolutions, box regression and face probabilities."""
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(x)))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.stem(x))


class RNet(nn.Module):
    """Refine net on 24×24 crops. Returns (box reg, probs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()  # Caffe's (W, H) flattening order
        x = self.prelu4(self.dense4(x.flatten(1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48×48 crops. Returns (box reg, 5 landmarks as x1..x5,y1..y5, probs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def default_mtcnn_folder() -> Path:
    """The weights cache's ``mtcnn`` folder when it holds all three files, else the copy shipped with faceprint."""
    cached = cache_dir() / "mtcnn"
    if all((cached / f"{n}.pt").is_file() for n in WEIGHT_SHA256):
        return cached
    return Path(str(resources.files("faceprint.align") / "weights"))


def load_mtcnn_nets(folder: str | Path | None = None, check_hash: bool = True) -> tuple[PNet, RNet, ONet]:
    """P/R/O-Net in eval mode from ``folder`` (default: ``default_mtcnn_folder()``)."""
    nets = (PNet(), RNet(), ONet())
    root = Path(folder) if folder else default_mtcnn_folder()
    for name, net in zip(("pnet", "rnet", "onet"), nets):
        path = root / f"{name}.pt"
        if not path.is_file():
            raise FileNotFoundError(
                f"MTCNN weights {path} not found; they ship inside the faceprint package, or copy "
                f"facenet-pytorch's data/{name}.pt there"
            )
        data = path.read_bytes()
        if check_hash and hashlib.sha256(data).hexdigest() != WEIGHT_SHA256[name]:
            raise ValueError(f"{path}: sha256 does not match the known {name} weights")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        net.eval()
    return nets  # type: ignore[return-value]
