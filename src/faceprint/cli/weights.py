"""``faceprint weights``: list known weights, fetch them on request, import them from local files or packages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import console, err_console

__all__ = ["weights_app"]

weights_app = typer.Typer(help="Pretrained weights: list, fetch (on request only) and import into the local cache.",
                          no_args_is_help=True)


@weights_app.command("list")
def list_cmd() -> None:
    """Known weights, where they come from, and what the cache holds."""
    from rich.markup import escape
    from rich.table import Table

    from faceprint.home import cache_dir
    from faceprint.models import list_pretrained
    from faceprint.models.importers import weights_status
    from faceprint.models.known import KNOWN_WEIGHTS
    from faceprint.models.packages import find_packaged

    table = Table(title=f"known weights (cache: {cache_dir()})")
    for col in ("name", "status", "description", "how to get", "`weights fetch` URL"):
        table.add_column(col, overflow="fold")
    cached = {info.name for info in list_pretrained()}
    for name, info in sorted(KNOWN_WEIGHTS.items()):
        if info.files:
            files = weights_status(name)
            status = ("the copy shipped with faceprint (cache empty)" if set(files.values()) == {"missing"}
                      else ", ".join(f"{f} in cache: {s}" for f, s in files.items()))
        else:
            packaged = find_packaged(name)
            status = "in cache" if name in cached else (f"installed package ({packaged}); converted on first use"
                                                       if packaged else "not available")
        table.add_row(name, escape(status), escape(info.description), escape(info.how_to_get), info.url or "")
    console.print(table)
    models = Table(title="embedding models in the cache")
    for col in ("name", "backbone", "dim", "input", "align", "source"):
        models.add_column(col)
    for info in list_pretrained():
        models.add_row(info.name, info.backbone, str(info.embedding_dim), f"{info.image_size} px", info.align, info.source)
    console.print(models)


@weights_app.command("fetch")
def fetch_cmd(
    source: Annotated[str, typer.Argument(help="A known name (casia-webface, vggface2) or an http(s) URL.")],
    sha256: Annotated[Optional[str], typer.Option(help="Expected sha256 of the file; a mismatch removes it.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name to store a URL's model under (default: the file name).")] = None,
) -> None:
    """Download weights you ask for (resumable, with a progress bar and sha256 check) and import them into the cache."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from faceprint.models.fetch import fetch_weights

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err_console) as progress:
        task = progress.add_task(f"fetch {source}", total=None)
        where, digest = fetch_weights(source, sha256, name,
                                      on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"fetched {source} (sha256 {digest}) into {where}", highlight=False)


@weights_app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="A weight file, a folder of them, or a facenet-pytorch wheel.")],
    name: Annotated[str, typer.Option(help="Which known weights these are.")] = "mtcnn",
) -> None:
    """Copy weights into the cache after checking their sha256 (nothing is written on a mismatch)."""
    from faceprint.models.importers import import_weights

    for path in import_weights(source, name):
        console.print(f"imported {path}")


@weights_app.command("import-tf")
def import_tf_cmd(
    graph: Annotated[Path, typer.Argument(help="davidsandberg frozen Inception-ResNet-v1 graph (.pb).")],
    name: Annotated[str, typer.Option(help="Name to store it under.")] = "casia-webface",
) -> None:
    """Convert a frozen TensorFlow FaceNet graph (no TensorFlow needed) into the cache as safetensors + JSON."""
    from faceprint.models.importers import import_tf_graph

    console.print(f"imported {graph} as {name!r} into {import_tf_graph(graph, name)}")


@weights_app.command("import-pt")
def import_pt_cmd(
    state_dict: Annotated[Path, typer.Argument(help="facenet-pytorch InceptionResnetV1 state dict (.pt).")],
    name: Annotated[str, typer.Option(help="Name to store it under.")] = "vggface2",
) -> None:
    """Import facenet-pytorch weights (e.g. 20180402-114759-vggface2.pt) into the cache."""
    from faceprint.models.importers import import_facenet_pytorch

    console.print(f"imported {state_dict} as {name!r} into {import_facenet_pytorch(state_dict, name)}")


@weights_app.command("import-onnx")
def import_onnx_cmd(
    model: Annotated[Path, typer.Argument(help="An ONNX face embedder: input (N, 3, S, S), output (N, D).")],
    name: Annotated[str, typer.Option(help="Name to store it under.")],
    input_size: Annotated[Optional[int], typer.Option(help="Input side (checked against the model).")] = None,
    mean: Annotated[float, typer.Option(help="Subtracted from 0..255 pixels.")] = 127.5,
    std: Annotated[float, typer.Option(help="Divides after the mean.")] = 127.5,
    align: Annotated[str, typer.Option(help="arcface112 (5-point template), margin (MTCNN box + 20 % of the side) or none (ready crops).")] = "arcface112",
    channels: Annotated[str, typer.Option(help="RGB or BGR input order.")] = "RGB",
) -> None:
    """Use any ONNX face embedder (ArcFace w600k_r50, SFace, ...) everywhere a model is named, via onnxruntime."""
    from faceprint.models.importers import import_onnx

    folder = import_onnx(model, name, input_size, mean, std, align, channels)
    console.print(f"imported {model} as {name!r} into {folder}")


@weights_app.command("import-dlib")
def import_dlib_cmd(
    model: Annotated[Path, typer.Argument(help="dlib_face_recognition_resnet_model_v1.dat (dlib's DNN serialization).")],
    name: Annotated[str, typer.Option(help="Name to store it under.")] = "dlib-resnet",
) -> None:
    """Convert dlib's face-recognition ResNet into PyTorch (no dlib needed); its faces are cut as dlib's 150-px chip."""
    from faceprint.models.importers import import_dlib

    console.print(f"imported {model} as {name!r} into {import_dlib(model, name)}")
