"""ResNet-18/34/50/101/152 (He et al. 2016) with an embedding head; written here, no torchvision."""

from __future__ import annotations

import torch
from torch import nn

from faceprint.backbones.base import EmbeddingHead, EmbeddingNet

__all__ = ["ResNet", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)
    )


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = _conv_bn(cin, width, 3, stride)
        self.conv2 = _conv_bn(width, cout, 3)
        self.downsample = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = _conv_bn(cin, width, 1)
        self.conv2 = _conv_bn(width, width, 3, stride)
        self.conv3 = _conv_bn(width, cout, 1)
        self.downsample = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return torch.relu(self.conv3(out) + self.downsample(x))


class ResNet(EmbeddingNet):
    """A ResNet trunk (7×7 stem, four stages, global average pool) and an embedding head."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], embedding_dim: int = 128) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(_conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
        stages, cin = [], 64
        for i, (width, depth) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.feature_dim = cin
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = EmbeddingHead(cin, embedding_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


def resnet18(embedding_dim: int = 128) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], embedding_dim)


def resnet34(embedding_dim: int = 128) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], embedding_dim)


def resnet50(embedding_dim: int = 128) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], embedding_dim)


def resnet101(embedding_dim: int = 128) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3], embedding_dim)


def resnet152(embedding_dim: int = 128) -> ResNet:
    return ResNet(Bottleneck, [3, 8, 36, 3], embedding_dim)
