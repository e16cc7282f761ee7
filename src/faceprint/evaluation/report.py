"""Evaluate an embedding function on a pairs file or a held-out identity folder; ROC plots and tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceprint.data.folder import IdentityFolder
from faceprint.models.embed import FACENET, EmbedFn, embed, embed_paths
from faceprint.models.embedder import Embedder
from faceprint.models.pipeline import FaceEmbedder
from faceprint.evaluation.identification import IdentificationResult, evaluate_identification
from faceprint.evaluation.pairs import PairList, generate_pairs
from faceprint.evaluation.plots import save_roc_chart
from faceprint.evaluation.fusion import evaluate_fusion
from faceprint.evaluation.verification import Metric, VerificationResult, embedding_distance, evaluate_verification

__all__ = ["EvalReport", "evaluate_folder", "evaluate_pair_list", "evaluate_pair_list_fused", "save_roc"]

PathEmbedder = Embedder | FaceEmbedder


@dataclass
class EvalReport:
    """Verification (and, for identity folders, identification) figures of one embedding."""

    verification: VerificationResult
    identification: IdentificationResult | None
    n_pairs: int
    n_images: int
    failed: list[tuple[Path, str]] = field(default_factory=list)
    fusion_weights: list[list[float]] | None = None  # per fold, for a fusion of several models

    def summary(self) -> dict[str, Any]:
        """Scalar figures, JSON-ready; ``rank1``/``map_at_r`` are None without identities."""
        d: dict[str, Any] = self.verification.summary()
        d["rank1"] = self.identification.rank1 if self.identification else None
        d["map_at_r"] = self.identification.map_at_r if self.identification else None
        d.update(n_pairs=self.n_pairs, n_images=self.n_images, n_failed=len(self.failed))
        if self.fusion_weights is not None:
            d["fusion_weights"] = self.fusion_weights
        return d


def _embed(fn: EmbedFn | torch.nn.Module | PathEmbedder, paths: list[Path], image_size: int, batch_size: int, flip: bool,
           on_batch: Callable[[int], None] | None) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
    """An Embedder or FaceEmbedder embeds files its own way (preprocessing, alignment); a bare function whole images."""
    if hasattr(fn, "embed_paths"):
        return fn.embed_paths(paths, batch_size=batch_size, flip=flip, on_batch=on_batch)  # type: ignore[union-attr]
    return embed_paths(fn, paths, image_size, batch_size, flip, on_batch)  # type: ignore[arg-type]


def _embed_items(fn: EmbedFn | torch.nn.Module, folder: IdentityFolder, image_size: int, batch_size: int, flip: bool,
                 on_batch: Callable[[int], None] | None) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
    """Embeddings of a packed or RecordIO folder's items, read through its reader (FaceNet standardization)."""
    chunks = []
    for i in range(0, len(folder), batch_size):
        x = torch.stack([folder.raw(k, image_size) for k in range(i, min(i + batch_size, len(folder)))])
        chunks.append(embed(fn, FACENET(x), image_size, batch_size, flip))
        if on_batch is not None:
            on_batch(min(i + batch_size, len(folder)))
    return np.concatenate(chunks), list(folder.paths), []


def _pair_rows(pairs: PairList, paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    row = {p: i for i, p in enumerate(paths)}
    keep = [k for k in range(len(pairs)) if pairs.first[k] in row and pairs.second[k] in row]
    a = np.array([row[pairs.first[k]] for k in keep], dtype=int)
    b = np.array([row[pairs.second[k]] for k in keep], dtype=int)
    return a, b, pairs.issame[keep]


def evaluate_pair_list(
    fn: EmbedFn | torch.nn.Module | PathEmbedder, pairs: PairList, image_size: int, flip: bool = False, metric: Metric = "squared_l2",
    batch_size: int = 64, on_batch: Callable[[int], None] | None = None,
) -> EvalReport:
    """Embed each image of ``pairs`` once and run the 10-fold protocol; unreadable images drop their pairs."""
    paths = pairs.unique_paths()
    emb, ok, failed = _embed(fn, paths, image_size, batch_size, flip, on_batch)
    a, b, same = _pair_rows(pairs, ok)
    result = evaluate_verification(emb[a], emb[b], same, metric=metric, n_folds=pairs.n_folds)
    return EvalReport(result, None, len(a), len(ok), failed)


def evaluate_pair_list_fused(
    fns: list[PathEmbedder], pairs: PairList, flip: bool = False, batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> EvalReport:
    """Score fusion of several models on ``pairs``: each embeds (and cuts faces) its own way, and the protocol runs on
    a weighted sum of their squared distances whose weight each fold chooses on its training folds."""
    paths = pairs.unique_paths()
    def progress(k: int) -> Callable[[int], None] | None:  # one count over all models' passes
        return None if on_batch is None else (lambda n: on_batch(k * len(paths) + n))

    runs = [_embed(fn, paths, 0, batch_size, flip, progress(k)) for k, fn in enumerate(fns)]
    ok = set.intersection(*(set(r[1]) for r in runs))
    a, b, same = _pair_rows(pairs, [p for p in paths if p in ok])
    kept = [p for p in paths if p in ok]
    distances = []
    for emb, embedded, _ in runs:
        index = {p: i for i, p in enumerate(embedded)}
        rows = np.array([index[p] for p in kept], dtype=int)
        distances.append(embedding_distance(emb[rows][a], emb[rows][b]))
    fused = evaluate_fusion(distances, same, pairs.n_folds)
    failed = list({p: r for run in runs for p, r in run[2]}.items())
    return EvalReport(fused.verification, None, len(a), len(kept), failed, fused.fold_weights)


def evaluate_folder(
    fn: EmbedFn | torch.nn.Module | PathEmbedder, folder: IdentityFolder, image_size: int, pairs_per_fold: int = 600, seed: int = 0,
    flip: bool = False, metric: Metric = "squared_l2", batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> EvalReport:
    """Verification on seeded pairs drawn from ``folder`` plus leave-one-out identification."""
    pairs = generate_pairs(folder, pairs_per_fold=pairs_per_fold, seed=seed)
    if folder.reader is not None and not hasattr(fn, "embed_paths"):  # a pack or RecordIO set: items, not files
        emb, ok, failed = _embed_items(fn, folder, image_size, batch_size, flip, on_batch)
    else:
        emb, ok, failed = _embed(fn, folder.paths, image_size, batch_size, flip, on_batch)
    a, b, same = _pair_rows(pairs, ok)
    result = evaluate_verification(emb[a], emb[b], same, metric=metric, n_folds=pairs.n_folds)
    label_of = dict(zip(folder.paths, folder.labels))
    labels = torch.tensor([label_of[p] for p in ok])
    ident = evaluate_identification(torch.from_numpy(emb), labels)
    return EvalReport(result, ident, len(a), len(ok), failed)


def save_roc(path: str | Path, results: dict[str, VerificationResult]) -> Path:
    """ROC curves (fold-averaged TPR against FPR) of several embeddings in one PNG, linear and log FAR axes."""
    return save_roc_chart(path, [(f"{name} (AUC {r.auc:.3f})", r.fpr, r.tpr) for name, r in results.items()])
