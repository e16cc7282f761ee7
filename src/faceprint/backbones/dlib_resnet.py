"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch: 29 convolutions, 150 px in.

The layers and their order are dlib's ``anet_type`` (``dnn_face_recognition_ex.cpp``): a 7×7/2 stem, max pool,
then residual levels of 32, 64, 128, 256 and 256 filters with ``affine`` (frozen batch norm) layers. Two dlib
rules are kept exactly: a stride-2 convolution has no padding, and a residual sum whose two inputs differ in
size pads the smaller with zeros at the end of each axis (channels, rows, columns) before adding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceprint.backbones.base import EmbeddingNet

__all__ = ["DlibResNet", "padded_add"]


def padded_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, missing entries of either input counting as zero."""
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class Affine(nn.Module):
    """Per-channel ``x · gamma + beta`` (dlib's ``affine`` layer: batch norm frozen after training)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    """dlib's default padding: k // 2 at stride 1, none otherwise."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if stride == 1 else 0)


class Residual(nn.Module):
    """``relu(add_prev(block(x), x))``; a down block strides its first conv and adds a 2×2 average of ``x``."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1, self.affine1 = _conv(cin, cout, 3, 2 if down else 1), Affine(cout)
        self.conv2, self.affine2 = _conv(cout, cout, 3, 1), Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        return F.relu(padded_add(y, F.avg_pool2d(x, 2, 2) if self.down else x))


class DlibResNet(EmbeddingNet):
    """``forward_head`` gives dlib's raw 128-d descriptor; ``forward`` its unit-length version."""

    LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
    """(filters, blocks, whether the level's first block goes down), from the input outwards."""

    def __init__(self, embedding_dim: int = 128) -> None:
        super().__init__()
        self.embedding_dim, self.feature_dim = embedding_dim, 256
        self.stem_conv, self.stem_affine = _conv(3, 32, 7, 2), Affine(32)
        blocks, cin = [], 32
        for filters, count, down in self.LEVELS:
            for k in range(count):
                blocks.append(Residual(cin, filters, down and k == 0))
                cin = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, embedding_dim, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem_conv(x))), 3, 2)
        return self.blocks(x).mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def dlib_order(self) -> list[tuple[str, nn.Module]]:
        """Layers with parameters in the order dlib serializes them (input side first): ("con"|"affine"|"fc", module)."""
        out: list[tuple[str, nn.Module]] = [("con", self.stem_conv), ("affine", self.stem_affine)]
        for block in self.blocks:
            out += [("con", block.conv1), ("affine", block.affine1), ("con", block.conv2), ("affine", block.affine2)]
        return [*out, ("fc", self.fc)]
