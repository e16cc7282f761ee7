"""``faceprint eval``, ``faceprint embed`` and ``faceprint export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from faceprint.cli.common import (
    ALIGN_HELP, console, err_console, metrics_table, model_spec, path_embedder, report_skipped, write_json,
)

if TYPE_CHECKING:
    from faceprint.data.folder import IdentityFolder
    from faceprint.evaluation.report import EvalReport

__all__ = ["embed_cmd", "eval_cmd", "export_cmd"]


def _embedder(checkpoint: Optional[Path], pixels: bool, image_size: Optional[int], weights: Optional[str] = None,
              backend: str = "torch", align: str = "none") -> tuple[object, int, str]:
    """The embedding to evaluate: a model (default casia-webface) or raw pixels, behind MTCNN when ``align`` asks."""
    from faceprint.models import Embedder
    from faceprint.models.embed import pixel_embed_fn

    if pixels + (checkpoint is not None) + (weights is not None) > 1:
        raise typer.BadParameter("give one of --checkpoint CKPT, --weights NAME or --pixels")
    if pixels:
        if align == "mtcnn":
            raise typer.BadParameter("--pixels works on whole images: use --align none")
        return pixel_embed_fn, image_size or 64, "raw pixels"
    embedder = Embedder.from_spec(model_spec(weights, checkpoint, backend))
    if image_size and image_size != embedder.image_size and embedder.align == "fused":
        raise typer.BadParameter("--image-size does not apply to a fusion (each model keeps its input size)")
    if image_size and image_size != embedder.image_size:
        if embedder.model is None:
            raise typer.BadParameter(f"{embedder.name} is an ONNX model with a fixed {embedder.image_size}-px input")
        embedder = Embedder(embedder.model, image_size, embedder.name, backend, embedder.preprocess, embedder.align)
    faces = path_embedder(embedder, align)
    return faces, embedder.image_size, embedder.name + (" (MTCNN)" if faces is not embedder else "")


def _split_folder(checkpoint: Optional[Path], split: Optional[str]) -> "IdentityFolder":
    """The val/test identities of the run that wrote ``checkpoint`` (same config, same seeded split)."""
    from faceprint.config import config_from_dict
    from faceprint.training import load_checkpoint, prepare_data

    if checkpoint is None or split not in ("val", "test"):
        raise typer.BadParameter("--split needs --checkpoint and one of: val, test")
    prepared = prepare_data(config_from_dict(load_checkpoint(checkpoint)["config"]).data)
    folder = getattr(prepared, split)
    if folder is None:
        raise typer.BadParameter(f"the run has no {split} identities")
    return folder


def eval_cmd(
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run folder.")] = None,
    weights: Annotated[Optional[str], typer.Option(help="Pretrained weights name or folder; a+b[+c] fuses models "
                                                       "(weight chosen per fold).")] = None,
    backend: Annotated[str, typer.Option(help="Inference backend: torch, channels_last or onnx.")] = "torch",
    pixels: Annotated[bool, typer.Option(help="Evaluate raw pixels instead of a model (baseline).")] = False,
    pairs: Annotated[Optional[Path], typer.Option(help="LFW-format pairs file.")] = None,
    images: Annotated[Optional[Path], typer.Option(help="Image root for --pairs.")] = None,
    bins: Annotated[Optional[list[Path]], typer.Option("--bin", help="A verification set as insightface ships them "
                    "(lfw.bin, cfp_fp.bin, agedb_30.bin, calfw.bin, cplfw.bin); repeat for one row each. Its images are "
                    "aligned crops (--align auto embeds them as they are; --align mtcnn detects).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Identity folder of held-out identities (pairs are generated).")] = None,
    split: Annotated[Optional[str], typer.Option(help="val or test: the checkpoint's own held-out identities.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Input size (default: the checkpoint's).")] = None,
    flip: Annotated[bool, typer.Option(help="Add mirrored images: [x ‖ mirrored x], re-normalised.")] = False,
    align: Annotated[str, typer.Option(help=ALIGN_HELP)] = "auto",
    metric: Annotated[str, typer.Option(help="squared_l2, cosine or angular.")] = "squared_l2",
    pairs_per_fold: Annotated[int, typer.Option(help="Generated pairs per fold (with --data).")] = 600,
    seed: Annotated[int, typer.Option(help="Seed for generated pairs.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Embedding batch size.")] = 64,
    roc: Annotated[Optional[Path], typer.Option(help="Write the ROC curve PNG here.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics JSON here.")] = None,
) -> None:
    """Verification (10-fold accuracy, VAL@FAR, AUC, EER) and, with --data, identification (rank-1, MAP@R)."""
    from rich.progress import Progress

    from faceprint.data.folder import scan_identity_folder
    from faceprint.evaluation import evaluate_folder, evaluate_pair_list, read_lfw_pairs

    if sum(x is not None for x in (pairs, data, split, bins or None)) != 1:
        raise typer.BadParameter("give one of --pairs FILE --images DIR, --bin FILE, --data DIR, or --split val|test")
    if bins:
        if pixels or "+" in (weights or "") or metric != "squared_l2":
            raise typer.BadParameter("--bin evaluates one model (no --pixels, fusion or --metric)")
        _eval_bins(bins, checkpoint, weights, backend, image_size, align, flip, batch_size, json_path)
        return
    if weights is not None and "+" in weights:  # score fusion: several models, one weight per fold
        if checkpoint is not None or pixels or image_size is not None or metric != "squared_l2":
            raise typer.BadParameter("a fusion (--weights a+b) takes no --checkpoint, --pixels, --image-size or --metric")
        _eval_fused(weights, backend, align, pairs, images, flip, batch_size, roc, json_path)
        return
    fn, size, name = _embedder(checkpoint, pixels, image_size, weights, backend, align)
    with Progress(console=err_console, transient=True) as progress:
        if pairs is not None:
            plist = read_lfw_pairs(pairs, images or pairs.parent)
            task = progress.add_task("embedding", total=len(plist.unique_paths()))
            report = evaluate_pair_list(fn, plist, size, flip, metric, batch_size,  # type: ignore[arg-type]
                                        on_batch=lambda n: progress.update(task, completed=n))
            if plist.missing:
                err_console.print(f"skipped {plist.missing} pairs with missing files")
        else:
            folder = scan_identity_folder(data) if data is not None else _split_folder(checkpoint, split)
            report_skipped([f"{s.path}: {s.reason}" for s in folder.skipped])
            task = progress.add_task("embedding", total=len(folder))
            report = evaluate_folder(fn, folder, size, pairs_per_fold, seed, flip, metric, batch_size,  # type: ignore[arg-type]
                                     on_batch=lambda n: progress.update(task, completed=n))
    no_face = len(getattr(fn, "no_face", []))
    if no_face:
        err_console.print(f"{no_face} images had no detected face: their centre crop was used")
    _show(name, report, no_face, roc, json_path)


def _eval_bins(bins: list[Path], checkpoint: Optional[Path], weights: Optional[str], backend: str,
               image_size: Optional[int], align: str, flip: bool, batch_size: int, json_path: Optional[Path]) -> None:
    """One row per ``.bin`` set: the field's 10-fold protocol on its aligned crops."""
    from rich.progress import Progress

    from faceprint.data.binset import BinSetError, read_bin
    from faceprint.evaluation.binsets import evaluate_bin

    fn, _, name = _embedder(checkpoint, False, image_size, weights, backend, "mtcnn" if align == "mtcnn" else "none")
    rows: dict[str, dict[str, object]] = {}
    for path in bins:
        try:
            bset = read_bin(path)
        except BinSetError as exc:
            raise typer.BadParameter(str(exc)) from None
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task(f"embedding {bset.name}", total=len(bset.images))
            report = evaluate_bin(fn, bset, flip, batch_size, on_batch=lambda n: progress.update(task, completed=n))
        report_skipped([reason for _, reason in report.failed], limit=20)
        rows[bset.name] = {**report.summary(), "pairs": report.n_pairs}
    console.print(metrics_table(f"{name}{' with flip' if flip else ''}: 10 folds per set", rows))
    write_json(json_path, {"embedding": name, "flip": flip, "sets": rows})


def _show(name: str, report: "EvalReport", no_face: object, roc: Optional[Path], json_path: Optional[Path]) -> None:
    """Skipped files, the metrics table, the ROC PNG and the JSON of one evaluation."""
    from faceprint.evaluation import save_roc

    report_skipped([reason for _, reason in report.failed], limit=None)
    summary = {**report.summary(), "no_face": no_face}
    console.print(metrics_table(f"{report.n_pairs} pairs, {report.n_images} images", {name: summary}))
    if roc is not None:
        save_roc(roc, {name: report.verification})
        err_console.print(f"wrote {roc}")
    write_json(json_path, {"embedding": name, **summary, "fold_accuracy": report.verification.fold_accuracy})


def _eval_fused(weights: str, backend: str, align: str, pairs: Optional[Path], images: Optional[Path], flip: bool,
                batch_size: int, roc: Optional[Path], json_path: Optional[Path]) -> None:
    """``--weights a+b``: each model detects and cuts faces its own way; the distance weight is chosen per fold."""
    from rich.progress import Progress

    from faceprint.evaluation import read_lfw_pairs
    from faceprint.evaluation.report import evaluate_pair_list_fused
    from faceprint.models import Embedder
    from faceprint.models.fusion import parse_fusion

    parts = parse_fusion(weights)
    names = [n for n, _ in parts]
    if pairs is None or any(w is not None for _, w in parts):
        raise typer.BadParameter("eval fuses two or more models (--weights a+b[+c]; it chooses the weights per fold, so "
                                 "give none) on --pairs FILE --images DIR")
    fns = [path_embedder(Embedder.from_spec(model_spec(n, None, backend)), align) for n in names]
    plist = read_lfw_pairs(pairs, images or pairs.parent)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("embedding", total=len(fns) * len(plist.unique_paths()))
        report = evaluate_pair_list_fused(fns, plist, flip, batch_size,
                                          on_batch=lambda n: progress.update(task, completed=n))
    if plist.missing:
        err_console.print(f"skipped {plist.missing} pairs with missing files")
    _show(weights, report, {n: len(getattr(fn, "no_face", [])) for n, fn in zip(names, fns)}, roc, json_path)


def embed_cmd(
    source: Annotated[Path, typer.Argument(help="An image, or a folder searched recursively for images.")],
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run folder.")] = None,
    weights: Annotated[Optional[str], typer.Option(help="Pretrained weights name in the cache, or their folder.")] = None,
    backend: Annotated[str, typer.Option(help="Inference backend: torch, channels_last or onnx.")] = "torch",
    flip: Annotated[bool, typer.Option(help="Add mirrored images: 2×D rows [x ‖ mirrored x], re-normalised.")] = False,
    align: Annotated[str, typer.Option(help=ALIGN_HELP)] = "auto",
    out: Annotated[Path, typer.Option(help="Output prefix: writes PREFIX.npy and PREFIX.csv.")] = Path("embeddings"),
    image_size: Annotated[Optional[int], typer.Option(help="Input size (default: the checkpoint's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Embedding batch size.")] = 64,
    engine: Annotated[str, typer.Option(help="For a folder: local (this machine) or ray (a Ray cluster).")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="For a folder: worker processes (local) or actors (ray).")] = 1,
    shard_size: Annotated[int, typer.Option(min=1, help="For a folder: images per shard (the unit of resume).")] = 256,
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: a local Ray).")] = None,
) -> None:
    """Write embeddings (N×D float32 .npy) and the matching image paths (.csv row i = embedding i).

    A folder runs on the bulk runner in resumable shards (kept in PREFIX.shards/): rerun to resume."""
    from faceprint.bulk.jobs import write_embeddings

    if source.is_dir():
        _embed_folder(source, out, model_spec(weights, checkpoint, backend), align, flip, batch_size, image_size,
                      engine, workers, shard_size, ray_address)
        return
    if not source.exists():
        raise typer.BadParameter(f"{source} does not exist")
    fn, size, _ = _embedder(checkpoint, False, image_size, weights, backend, align)
    paths = [source]
    emb, ok, failed = fn.embed_paths(paths, batch_size, flip)  # type: ignore[attr-defined]
    report_skipped([reason for _, reason in failed], limit=None)
    if not ok:
        raise typer.BadParameter(f"no readable image under {source}")
    write_embeddings(out.with_suffix(""), emb, ok)
    console.print(f"wrote {len(ok)} embeddings of dimension {emb.shape[1]} to {out.with_suffix('.npy')} and {out.with_suffix('.csv')}")


def _embed_folder(source: Path, out: Path, spec: dict[str, str], align: str, flip: bool, batch_size: int,
                  image_size: Optional[int], engine: str, workers: int, shard_size: int, ray_address: Optional[str]) -> None:
    import dataclasses

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from faceprint.bulk import EmbedJob, run_job

    if align not in ("auto", "mtcnn", "none") or engine not in ("local", "ray"):
        raise typer.BadParameter("--align must be auto|mtcnn|none and --engine local|ray")
    job = EmbedJob(str(source), str(out.with_suffix("")), spec, align, flip, batch_size, image_size)  # PREFIX.npy, as
    # for one image
    model = job.setup()  # here first: a missing model is one clear line before any work (and reused locally)
    if image_size and image_size != model.embedder.image_size:
        raise typer.BadParameter(f"{model.embedder.name} has a fixed {model.embedder.image_size}-px input")
    job = dataclasses.replace(job, model_id=model.embedder.fingerprint())
    columns = (TextColumn("embed"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task("embed", total=None)
        report = run_job(job, engine, workers, shard_size, lambda d, t: progress.update(task, completed=d, total=t),
                         ray_address, model=model if engine == "local" and workers == 1 else None)
    report_skipped([p["detail"] for p in report.problems if p["issue"] == "unreadable"], limit=None)
    n = sum(r["written"] for r in report.records)
    if not n:
        raise typer.BadParameter(f"no readable image under {source}")
    console.print(f"wrote {n} embeddings to {out.with_suffix('.npy')} and {out.with_suffix('.csv')} "
                  f"({report.shards_run} shards run, {report.shards_skipped} already done)")


def export_cmd(
    out: Annotated[Path, typer.Argument(help="Output file, e.g. model.onnx.")],
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run folder.")] = None,
    weights: Annotated[Optional[str], typer.Option(help="Pretrained weights name in the cache, or their folder.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format (onnx).")] = "onnx",
    check: Annotated[bool, typer.Option(help="Compare onnxruntime with torch on 8 random images.")] = True,
) -> None:
    """Export a model with a dynamic batch axis (input ``images`` N×3×S×S standardized, output ``embeddings``)."""
    import torch

    from faceprint.models import OnnxEmbedFn

    if fmt != "onnx":
        raise typer.BadParameter(f"unsupported format {fmt!r} (supported: onnx)")
    if weights is not None and "+" in weights:
        raise typer.BadParameter("a fusion is several models: export each one (--weights NAME)")
    embedder, size, name = _embedder(checkpoint, False, None, weights)
    path = embedder.export_onnx(out)  # type: ignore[attr-defined]
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) from {name}, input 3×{size}×{size}")
    if embedder.model is None:  # type: ignore[attr-defined]
        console.print("an imported ONNX model: the file was copied as it is (no torch model to compare with)")
        return
    if check:
        x = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(0))
        diff = (OnnxEmbedFn(path)(x) - embedder(x)).abs().max().item()  # type: ignore[operator]
        console.print(f"onnxruntime vs torch on a batch of 8: max abs difference {diff:.2e}")
        if diff > 1e-4:
            raise ValueError(f"exported model differs from torch by {diff:.2e} (> 1e-4)")
