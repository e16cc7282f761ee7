"""Inception-ResNet-v1 with exactly facenet-pytorch's module and parameter names.

State dicts of facenet-pytorch (vggface2 / casia-webface ``.pt`` files, less ``logits.*``) load with
``strict=True``; see SPEC §3.2.
"""

from __future__ import annotations

import torch
from torch import nn

from faceprint.backbones.base import EmbeddingNet

__all__ = ["InceptionResnetV1"]


class BasicConv2d(nn.Module):
    """Conv (no bias) + batch norm (eps 1e-3) + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class _Residual(nn.Module):
    """Concatenate the branches, project with ``conv2d``, scale and add to the input."""

    branches: tuple[str, ...]

    def __init__(self, scale: float, relu: bool) -> None:
        super().__init__()
        self.scale = scale
        self.use_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, b)(x) for b in self.branches], dim=1)
        out = self.conv2d(out) * self.scale + x
        return torch.relu(out) if self.use_relu else out


class Block35(_Residual):
    branches = ("branch0", "branch1", "branch2")

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__(scale, relu=True)
        self.branch0 = BasicConv2d(256, 32, 1, 1)
        self.branch1 = nn.Sequential(BasicConv2d(256, 32, 1, 1), BasicConv2d(32, 32, 3, 1, 1))
        self.branch2 = nn.Sequential(
            BasicConv2d(256, 32, 1, 1), BasicConv2d(32, 32, 3, 1, 1), BasicConv2d(32, 32, 3, 1, 1)
        )
        self.conv2d = nn.Conv2d(96, 256, 1, 1)


class Block17(_Residual):
    branches = ("branch0", "branch1")

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__(scale, relu=True)
        self.branch0 = BasicConv2d(896, 128, 1, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 128, 1, 1),
            BasicConv2d(128, 128, (1, 7), 1, (0, 3)),
            BasicConv2d(128, 128, (7, 1), 1, (3, 0)),
        )
        self.conv2d = nn.Conv2d(256, 896, 1, 1)


class Block8(_Residual):
    branches = ("branch0", "branch1")

    def __init__(self, scale: float = 1.0, no_relu: bool = False) -> None:
        super().__init__(scale, relu=not no_relu)
        self.branch0 = BasicConv2d(1792, 192, 1, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1792, 192, 1, 1),
            BasicConv2d(192, 192, (1, 3), 1, (0, 1)),
            BasicConv2d(192, 192, (3, 1), 1, (1, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1792, 1, 1)


class _Concat(nn.Module):
    branches: tuple[str, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, b)(x) for b in self.branches], dim=1)


class Mixed_6a(_Concat):  # noqa: N801 - facenet-pytorch's name
    branches = ("branch0", "branch1", "branch2")

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, 2)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 192, 1, 1), BasicConv2d(192, 192, 3, 1, 1), BasicConv2d(192, 256, 3, 2)
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)


class Mixed_7a(_Concat):  # noqa: N801 - facenet-pytorch's name
    branches = ("branch0", "branch1", "branch2", "branch3")

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 384, 3, 2))
        self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 256, 3, 2))
        self.branch2 = nn.Sequential(
            BasicConv2d(896, 256, 1, 1), BasicConv2d(256, 256, 3, 1, 1), BasicConv2d(256, 256, 3, 2)
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)


class InceptionResnetV1(EmbeddingNet):
    """FaceNet's Inception-ResNet-v1 (160×160 input, fixed standardization).

    Args:
        embedding_dim: size of ``last_linear`` / ``last_bn`` (512 in the released weights).
        dropout: dropout probability before the head (0.6 in facenet-pytorch).
        num_classes: if given, adds a ``logits`` layer (used by classification fine-tuning).
    """

    def __init__(self, embedding_dim: int = 512, dropout: float = 0.6, num_classes: int | None = None) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.feature_dim = 1792
        self.conv2d_1a = BasicConv2d(3, 32, 3, 2)
        self.conv2d_2a = BasicConv2d(32, 32, 3, 1)
        self.conv2d_2b = BasicConv2d(32, 64, 3, 1, 1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3, 1)
        self.conv2d_4b = BasicConv2d(192, 256, 3, 2)
        self.repeat_1 = nn.Sequential(*[Block35(scale=0.17) for _ in range(5)])
        self.mixed_6a = Mixed_6a()
        self.repeat_2 = nn.Sequential(*[Block17(scale=0.10) for _ in range(10)])
        self.mixed_7a = Mixed_7a()
        self.repeat_3 = nn.Sequential(*[Block8(scale=0.20) for _ in range(5)])
        self.block8 = Block8(no_relu=True)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1792, embedding_dim, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_dim, eps=0.001, momentum=0.1, affine=True)
        if num_classes is not None:
            self.logits = nn.Linear(embedding_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b"):
            x = getattr(self, name)(x)
        x = self.repeat_3(self.mixed_7a(self.repeat_2(self.mixed_6a(self.repeat_1(x)))))
        x = self.avgpool_1a(self.block8(x))
        return self.dropout(x.flatten(1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.last_bn(self.last_linear(features))
