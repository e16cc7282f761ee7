"""MobileFaceNet (Chen et al. 2018): a ~1M-parameter face backbone for CPUs and edge devices."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceprint.backbones.base import EmbeddingNet

__all__ = ["MobileFaceNet"]

# (expansion, out channels, repeats, first stride), as in the paper's Table 1
SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def _cbp(cin: int, cout: int, k: int, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2 if k > 1 else 0, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1×1 expand, 3×3 depthwise, 1×1 linear projection; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.block = nn.Sequential(_cbp(cin, mid, 1), _cbp(mid, mid, 3, stride, groups=mid), _cbp(mid, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileFaceNet(EmbeddingNet):
    """112×112 design; other sizes (≥ 32 px) are pooled to the 7×7 map the global depthwise layer expects."""

    def __init__(self, embedding_dim: int = 128) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.conv1 = _cbp(3, 64, 3, 2)
        self.dw_conv1 = _cbp(64, 64, 3, 1, groups=64)
        blocks, cin = [], 64
        for t, c, n, s in SETTINGS:
            for i in range(n):
                blocks.append(Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = _cbp(cin, 512, 1)
        self.gdconv = _cbp(512, 512, 7, groups=512, act=False)  # global depthwise conv (valid 7×7)
        self.gdconv[0].padding = (0, 0)
        self.feature_dim = 512
        self.linear = nn.Conv2d(512, embedding_dim, 1, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.blocks(self.dw_conv1(self.conv1(x))))
        if x.shape[-2:] != (7, 7):
            x = F.adaptive_avg_pool2d(x, 7)
        return self.gdconv(x).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(features[:, :, None, None]).flatten(1))
