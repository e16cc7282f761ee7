"""The ``faceprint`` command: a thin layer over the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli import align as align_cmds
from faceprint.cli.accounts import keys_app, users_app
from faceprint.cli.classify import classify_app
from faceprint.cli.index import cluster_cmd, index_app, serve_cmd
from faceprint.cli.library import library_app
from faceprint.cli.pack import pack_cmd
from faceprint.cli import evaluate as evaluate_cmds
from faceprint.cli import sweep as sweep_cmds
from faceprint.cli import train as train_cmds
from faceprint.cli.common import console, err_console
from faceprint.cli.weights import weights_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="faceprint", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Learn FaceNet-style face embeddings with triplet loss and online mining, and put them to work.",
)


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False) -> None:
    """faceprint: train, evaluate and use face embeddings."""


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (OUT/<identity>/<image>.png).")],
    identities: Annotated[int, typer.Option(help="Number of identities.")] = 200,
    images_per_identity: Annotated[int, typer.Option(help="Images per identity.")] = 12,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same dataset).")] = 0,
) -> None:
    """Write a procedural face-like identity dataset (resumable: existing images are kept)."""
    from rich.progress import Progress

    from faceprint.data.synth import write_synthetic_dataset

    with Progress(console=err_console) as progress:
        task = progress.add_task("synth", total=identities)
        write_synthetic_dataset(out, identities, images_per_identity, size, seed,
                                progress=lambda done, total: progress.update(task, completed=done))
    console.print(f"wrote {identities} identities × {images_per_identity} images to {out}")


@app.command("backbones")
def backbones_cmd() -> None:
    """List the registered backbones."""
    from rich.table import Table

    from faceprint.backbones import backbone_spec, list_backbones

    table = Table(title="backbones")
    for col in ("name", "input", "description"):
        table.add_column(col)
    for name in list_backbones():
        spec = backbone_spec(name)
        table.add_row(name, f"{spec.input_size} px", spec.description)
    console.print(table)


app.command("train")(train_cmds.train_cmd)
app.command("demo")(train_cmds.demo_cmd)
app.command("eval")(evaluate_cmds.eval_cmd)
app.command("embed")(evaluate_cmds.embed_cmd)
app.command("export")(evaluate_cmds.export_cmd)
app.command("align")(align_cmds.align_cmd)
app.command("sweep")(sweep_cmds.sweep_cmd)
app.command("pack")(pack_cmd)
app.add_typer(weights_app, name="weights")
app.add_typer(classify_app, name="classify")
app.add_typer(index_app, name="index")
app.add_typer(library_app, name="library")
app.command("serve")(serve_cmd)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.command("cluster")(cluster_cmd)


def _known_errors() -> tuple[type[BaseException], ...]:
    from faceprint.classify import ClassifierError
    from faceprint.config import ConfigError
    from faceprint.data.folder import DatasetError
    from faceprint.data.images import ImageLoadError
    from faceprint.io import AtomicWriteError
    from faceprint.search.store import IndexError_
    from faceprint.training.trainer import TrainingError
    from faceprint.models import CheckpointError, WeightsError
    from faceprint.bulk.runner import BulkError

    # ImportError: an optional engine or backend not installed (its message names the extra to install)
    return (ClassifierError, ConfigError, IndexError_, DatasetError, ImageLoadError, AtomicWriteError, CheckpointError, TrainingError, WeightsError,
            BulkError, ValueError, OSError, ImportError)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: known errors print one line (no traceback unless --debug) and exit with status 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, standalone_mode=True)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: progress was checkpointed; rerun with --resume to continue")
        sys.exit(130)
    except _known_errors() as exc:
        if "--debug" in args:
            raise
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
