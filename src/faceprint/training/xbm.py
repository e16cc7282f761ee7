"""Cross-batch memory (XBM, Wang et al. CVPR 2020): mine against embeddings of recent batches too.

Embeddings drift slowly once training settles, so the last few thousand (detached) embeddings are
nearly as good as fresh ones and give every anchor far more candidates than one batch holds.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CrossBatchMemory"]


class CrossBatchMemory:
    """A FIFO of the most recent ``size`` embeddings and labels (newest first)."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"memory size must be >= 0, got {size}")
        self.size = size
        self.embeddings: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.labels is None else len(self.labels)

    def extend(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch (detached), dropping the oldest beyond ``size``."""
        e, y = embeddings.detach(), labels.detach()
        if self.embeddings is not None:
            e, y = torch.cat([e, self.embeddings]), torch.cat([y, self.labels])  # type: ignore[list-item]
        self.embeddings, self.labels = e[: self.size], y[: self.size]

    def with_batch(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[batch; memory] embeddings and labels; rows past ``len(batch)`` carry no gradient."""
        if not len(self):
            return embeddings, labels
        return torch.cat([embeddings, self.embeddings.to(embeddings.dtype)]), torch.cat([labels, self.labels])  # type: ignore[union-attr]

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "embeddings": self.embeddings, "labels": self.labels}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size, self.embeddings, self.labels = int(state["size"]), state["embeddings"], state["labels"]
