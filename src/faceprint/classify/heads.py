"""Classification heads over L2-normalized embeddings: nearest centroid, softmax regression, linear SVM.

Each head maps (N, D) embeddings to (N, C) scores (higher = more likely); all are fit full-batch in torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["HEADS", "CentroidHead", "Head", "SoftmaxHead", "SvmHead", "create_head"]


class Head:
    """Base: ``fit(x, y)``, ``scores(x)``, and the tensors that describe a fitted head."""

    name = ""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.tensors: dict[str, torch.Tensor] = {}

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> Head:
        raise NotImplementedError

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class CentroidHead(Head):
    """Cosine similarity to each identity's mean embedding (re-normalized)."""

    name = "centroid"

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> Head:
        sums = torch.zeros(self.num_classes, x.shape[1], dtype=x.dtype).index_add_(0, y, x)
        self.tensors = {"centroids": F.normalize(sums, dim=1)}
        return self

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ self.tensors["centroids"].T


class _LinearHead(Head):
    """A linear layer fit with L-BFGS on the whole training set; ``reg`` is the L2 weight penalty."""

    def __init__(self, num_classes: int, reg: float = 1e-3, iterations: int = 100) -> None:
        super().__init__(num_classes)
        self.reg, self.iterations = reg, iterations

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> Head:
        x = x.double()
        w = torch.zeros(self.num_classes, x.shape[1], dtype=x.dtype, requires_grad=True)
        b = torch.zeros(self.num_classes, dtype=x.dtype, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1, max_iter=self.iterations, history_size=20,
                                tolerance_grad=1e-7, tolerance_change=1e-9, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = self._loss(x @ w.T + b, y) + self.reg * (w * w).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.tensors = {"weight": w.detach().float(), "bias": b.detach().float()}
        return self

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() @ self.tensors["weight"].T + self.tensors["bias"]


class SoftmaxHead(_LinearHead):
    """Multinomial logistic regression; scores are class probabilities."""

    name = "softmax"

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).softmax(dim=1)


class SvmHead(_LinearHead):
    """One-vs-rest linear SVM (squared hinge); scores are decision values."""

    name = "svm"

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        sign = -torch.ones_like(logits)
        sign[torch.arange(len(y)), y] = 1.0
        return F.relu(1 - sign * logits).pow(2).sum(1).mean()

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


HEADS: dict[str, type[Head]] = {h.name: h for h in (CentroidHead, SoftmaxHead, SvmHead)}


def create_head(name: str, num_classes: int) -> Head:
    """A head by name: centroid, softmax or svm."""
    if name not in HEADS:
        raise ValueError(f"unknown classifier method {name!r}; choose from {', '.join(HEADS)}")
    return HEADS[name](num_classes)
