"""A tiny embedding net whose output moves with every pixel, unlike randomly initialised backbones (their batch
norm and pooling make them nearly input-invariant at init, which would let a wrong crop or scale pass a test)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class SensitiveNet(torch.nn.Module):
    """A strided conv, tanh and a linear head; unit-length output like every embedding net here."""

    def __init__(self, dim: int, size: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embedding_dim = dim
        self.conv = torch.nn.Conv2d(3, 4, 5, stride=4)
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, 3, size, size)).numel()
        self.head = torch.nn.Linear(flat, dim)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(torch.tanh(self.conv(x) + 0.5).flatten(1)), dim=1)
