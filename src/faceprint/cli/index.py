"""``faceprint index build / add / remove / info / search``, ``faceprint serve`` and ``faceprint cluster``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import console, err_console, model_spec, report_skipped, write_json

__all__ = ["cluster_cmd", "index_app", "serve_cmd"]

index_app = typer.Typer(help="A persistent face index (FAISS + SQLite): build, grow, search.", no_args_is_help=True)


def _progress(label: str):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console)


def _problems(report) -> None:  # type: ignore[no-untyped-def]
    report_skipped([f"{p['path']}: {p['issue']} ({p['detail']})" for p in report.problems], limit=20, more="more")


IDENTITIES_HELP = ("Take each image's identity from its folder (GALLERY/<identity>/<image>; the largest face of each "
                   "image is indexed), or not (a photo collection: every face, no identity). Default: by the layout "
                   "(one folder level, several folders, face-sized images: identities).")


@index_app.command("build")
def build_cmd(
    gallery: Annotated[Path, typer.Argument(help="Images: GALLERY/<identity>/<image>, or loose photos.")],
    out: Annotated[Path, typer.Option(help="Index folder to create.")],
    weights: Annotated[Optional[str], typer.Option(help="Pretrained weights name (e.g. casia-webface) or folder.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run folder.")] = None,
    detect: Annotated[Optional[bool], typer.Option("--detect/--no-detect", help="Detect and align faces (MTCNN); --no-detect for pre-cropped faces or animals (default: as the model expects).")] = None,
    kind: Annotated[str, typer.Option(help="auto (exact below 200k faces, IVF above), flat, ivf or hnsw.")] = "auto",
    backend: Annotated[str, typer.Option(help="Inference backend: torch, channels_last or onnx.")] = "torch",
    force: Annotated[bool, typer.Option(help="Replace an existing index at --out (only once the new one is complete).")] = False,
    vectors: Annotated[str, typer.Option("--vectors", help="Where the vectors are searched: faiss (embedded) or milvus.")]
    = "faiss",
    milvus_uri: Annotated[Optional[str], typer.Option(help="A Milvus Lite file (x.db), a Milvus Lite server or a Milvus "
                          "cluster (http://host:19530).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes detecting and embedding (the bulk runner; 1: "
                       "one process).")] = 1,
    engine: Annotated[str, typer.Option(help="local, or ray (a Ray cluster: pip install 'faceprint[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="With --engine ray: the cluster (default: start one here).")] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="Images per shard of the bulk runner.")] = 256,
    identities: Annotated[Optional[bool], typer.Option("--identities-from-folders/--no-identities-from-folders",
                          help=IDENTITIES_HELP)] = None,
) -> None:
    """Detect, embed and index every image; a killed build leaves any old index untouched and resumes on rerun."""
    from faceprint.bulk import Runner
    from faceprint.search import build_index

    if vectors not in ("faiss", "milvus") or (vectors == "milvus") != (milvus_uri is not None):
        raise typer.BadParameter("--vectors milvus needs --milvus-uri URI (and --milvus-uri needs --vectors milvus)")
    where = {"backend": "milvus", "uri": milvus_uri} if vectors == "milvus" else None

    with _progress("index") as progress:
        task = progress.add_task("index", total=None)
        index, report = build_index(gallery, out, model_spec(weights, checkpoint, backend), detect, kind, force,
                                    progress=lambda d, t: progress.update(task, completed=d, total=t), vectors=where,
                                    runner=Runner(engine, workers, shard_size, ray_address), identities=identities)
    _problems(report)
    info = index.store.info()
    how = ("identities from folder names: the largest face of each image" if info["identities"] else
           "a photo collection: every face, no identity (--identities-from-folders to take them from folders)")
    console.print(f"indexed {report.faces} faces from {report.images} images into {out} "
                  f"({info['identities']} identities; verdict threshold {index.threshold:.2f}); {how}")


@index_app.command("add")
def add_cmd(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    images: Annotated[list[Path], typer.Argument(help="Images or folders (folder/<identity>/<image>).")],
    identity: Annotated[Optional[str], typer.Option(help="Identity for all the given images.")] = None,
    identities: Annotated[Optional[bool], typer.Option("--identities-from-folders/--no-identities-from-folders",
                          help=IDENTITIES_HELP)] = None,
) -> None:
    """Add images in one transaction: a failure or kill adds nothing and leaves the index as it was."""
    from faceprint.search import gallery_images, open_index

    index = open_index(index_dir)
    if identities is None and identity is None and index.store.identities():  # an index of identities grows as one
        identities = True
    todo = []
    for src in images:
        found = gallery_images(src, identities)
        if not found:
            raise typer.BadParameter(f"no images at {src}")
        todo += [(p, identity or ident) for p, ident in found]
    try:
        with _progress("add") as progress:
            task = progress.add_task("add", total=len(todo))
            report = index.add_images(todo, progress=lambda d, t: progress.update(task, completed=d))
        _problems(report)
        console.print(f"added {report.faces} faces from {report.images} images ({report.already} already indexed); "
                      f"{len(index.store)} faces in all")
    finally:
        index.close()  # saves the FAISS structure when enough rows are behind its file


@index_app.command("remove")
def remove_cmd(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    face_id: Annotated[Optional[list[int]], typer.Option("--id", help="Face id (repeatable).")] = None,
    path: Annotated[Optional[str], typer.Option(help="Every face of this image path.")] = None,
    identity: Annotated[Optional[str], typer.Option(help="Every face of this identity.")] = None,
) -> None:
    """Remove faces by id, image path or identity."""
    from faceprint.search import FaceStore

    if not face_id and path is None and identity is None:
        raise typer.BadParameter("give --id, --path or --identity")
    store = FaceStore(index_dir)
    try:
        if path is not None and Path(path).exists():  # stored paths are resolved where they enter (as `index add` did)
            path = str(Path(path).resolve())
        n = store.remove(face_id, path, identity)
        console.print(f"removed {n} faces; {len(store)} left")
    finally:
        store.close()


@index_app.command("info")
def info_cmd(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the info here.")] = None,
) -> None:
    """Faces, identities, model and index kind."""
    from faceprint.models.thresholds import thresholds_for
    from faceprint.search import DEFAULT_THRESHOLD, FaceStore

    store = FaceStore(index_dir)
    info = store.info()
    weights = (store.meta.get("embedder") or {}).get("weights")
    store.close()
    if info["threshold"] is None:  # not calibrated: the verdict uses the model's measured value, else the default
        measured = thresholds_for(weights)
        info["threshold"], info["threshold_source"] = ((measured.verdict, f"measured for {weights} (not calibrated)")
                                                       if measured else (DEFAULT_THRESHOLD, "default (not calibrated)"))
    else:
        info["threshold_source"] = "calibrated"
    for k, v in info.items():
        console.print(f"{k:>11}: {v}", highlight=False)
    write_json(json_path, info)


@index_app.command("calibrate")
def calibrate_cmd(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    far: Annotated[float, typer.Option(help="False-accept rate of the verdict on the gallery's different-identity pairs.")] = 1e-3,
    threshold: Annotated[Optional[float], typer.Option(help="Set this squared-L2 threshold instead.")] = None,
) -> None:
    """Set the same/different verdict threshold from the gallery's identities (or by hand)."""
    from faceprint.search import FaceStore
    from faceprint.search.index import calibrate_store

    store = FaceStore(index_dir)
    if threshold is None:
        threshold = calibrate_store(store, far)
        if threshold is None:
            raise typer.BadParameter("the index needs faces of at least two named identities to calibrate; give --threshold")
    else:
        store.set_threshold(threshold)
    console.print(f"verdict threshold {threshold:.4f} (squared L2)")


@index_app.command("search")
def search_cmd(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    image: Annotated[Path, typer.Argument(help="Query image (every detected face is searched).")],
    k: Annotated[int, typer.Option("-k", help="Matches per face.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The nearest indexed faces of each face in IMAGE, with distances and same/different verdicts."""
    import json

    from rich.table import Table

    from faceprint.search import open_index

    index = open_index(index_dir)
    faces = index.query(image, k)
    result = [{"box": f.crop.box, "matches": [
        {"id": m.face.id, "identity": m.face.identity, "path": m.face.path, "distance": round(m.distance, 4),
         "same": m.distance < index.threshold} for m in f.matches]} for f in faces]
    if json_out:
        print(json.dumps({"image": str(image), "threshold": index.threshold, "faces": result}, indent=2))
        return
    if not faces:
        console.print(f"no face found in {image}")
    for i, face in enumerate(result):
        table = Table(title=f"face {i + 1} {face['box'] or ''}")
        for col in ("rank", "identity", "distance", "same?", "path"):
            table.add_column(col)
        for r, m in enumerate(face["matches"], 1):
            table.add_row(str(r), m["identity"] or "—", f"{m['distance']:.3f}", "yes" if m["same"] else "no", m["path"])
        console.print(table)


def serve_cmd(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    host: Annotated[str, typer.Option(help="Interface to listen on (beyond loopback, every route needs a login or key).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    detect: Annotated[Optional[bool], typer.Option("--detect/--no-detect",
                      help="Detect faces in uploads (default: as the index was built).")] = None,
    token_env: Annotated[str, typer.Option(help="Environment variable holding an extra API key (role editor).")]
    = "FACEPRINT_API_TOKEN",
    show_paths: Annotated[bool, typer.Option(help="Include gallery file paths (the server's own) in search answers.")]
    = False,
    allowed_host: Annotated[Optional[list[str]], typer.Option(help="A Host name clients use (the server's name on the "
                            "network, or a proxy's): loopback names, --host and this machine's name are always allowed.")]
    = None,
    certfile: Annotated[Optional[Path], typer.Option(help="TLS certificate (PEM): serve https.")] = None,
    keyfile: Annotated[Optional[Path], typer.Option(help="TLS private key (PEM) of --certfile.")] = None,
    forwarded_allow_ips: Annotated[Optional[str], typer.Option(help="Addresses of a reverse proxy whose "
                                   "X-Forwarded-For/-Proto headers are trusted (e.g. 127.0.0.1).")] = None,
    session_hours: Annotated[float, typer.Option(min=0.01, help="How long a login lasts.")] = 12.0,
    max_faces: Annotated[int, typer.Option(min=1, help="Faces embedded per upload (the largest; the answer counts the "
                         "rest).")] = 64,
    backend: Annotated[str, typer.Option(help="auto (onnxruntime when installed), torch, channels_last or onnx.")] = "auto",
    max_batch: Annotated[int, typer.Option(min=1, help="Images of concurrent requests detected and embedded together "
                         "(1: no micro-batching).")] = 32,
    batch_window_ms: Annotated[float, typer.Option(min=0, help="Under load, how long a batch waits for more requests "
                               "to join it.")] = 2.0,
    max_pending: Annotated[int, typer.Option(min=1, help="Uploads in flight before new ones get 503 + Retry-After "
                           "(bounds memory: each holds its body and decoded image).")] = 32,
    max_side: Annotated[Optional[int], typer.Option(min=64, help="Larger photos are reduced to this many pixels on "
                        "their long side before detection (default: the detection size every command uses; boxes stay "
                        "in the photo's pixels).")] = None,
) -> None:
    """Serve the search page, the people pages of a library and the JSON API (docs at /docs).

    On loopback with no users or keys the server is open; once `faceprint users add` or `faceprint keys create` made
    one, or beyond loopback, every route needs a login (the /login page) or an API key."""
    import socket

    import uvicorn

    from faceprint.models.onnx import fastest_backend
    from faceprint.serve import ServeConfig, create_app
    from faceprint.serve.accounts import Accounts

    token = os.environ.get(token_env) or None
    loopback = host in ("127.0.0.1", "localhost", "::1")
    # reached from elsewhere: beyond loopback, or through a proxy (named by --allowed-host or --forwarded-allow-ips)
    shared = not loopback or bool(allowed_host) or bool(forwarded_allow_ips)
    accounts = Accounts(index_dir)
    if shared and token is None and not accounts.exists():
        where = f"on {host}" if not loopback else "through a proxy"
        raise typer.BadParameter(f"serving {where} would show every face and photo to anyone who reaches it: add a "
                                 f"user first (faceprint users add {index_dir} NAME --role admin) or an API key "
                                 f"(faceprint keys create {index_dir} --role viewer)")
    if (token is not None or accounts.exists()) and not accounts.users():
        err_console.print(f"note: there are keys but no users, so the pages cannot be logged in to "
                          f"(faceprint users add {index_dir} NAME)")
    if (certfile is None) != (keyfile is None):
        raise typer.BadParameter("--certfile and --keyfile go together")
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]", *(allowed_host or [])]
    if host in ("0.0.0.0", "::"):  # every interface: this machine's names and addresses too (the Host check stays on)
        name = socket.gethostname()
        hosts += [name, f"{name}.local", socket.getfqdn()]
        try:
            hosts += [a[4][0] if ":" not in a[4][0] else f"[{a[4][0]}]" for a in socket.getaddrinfo(name, None)]
        except OSError:
            pass
    else:
        hosts.append(host)
    cfg = ServeConfig(token=token, auth_required=shared, show_paths=show_paths, allowed_hosts=tuple(dict.fromkeys(hosts)),
                      max_batch=max_batch, batch_window_ms=batch_window_ms, max_pending=max_pending, max_side=max_side,
                      session_hours=session_hours, max_faces=max_faces)
    app = create_app(index_dir, cfg, detect=detect, backend=fastest_backend() if backend == "auto" else backend)
    scheme = "https" if certfile else "http"
    console.print(f"serving {index_dir} ({len(app.state.index.store)} faces) on {scheme}://{host}:{port}"
                  + ("" if loopback else f"; Host names allowed: {', '.join(cfg.allowed_hosts or ())}"))
    extra = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)} if certfile else {}
    # uvicorn trusts X-Forwarded-* from 127.0.0.1 by default: only when a proxy is named (the login limits key on the client)
    if forwarded_allow_ips:
        extra.update(proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips)
    else:
        extra["proxy_headers"] = False
    uvicorn.run(app, host=host, port=port, log_level="warning", **extra)


def cluster_cmd(
    photos: Annotated[Path, typer.Argument(help="A folder of photos (sub-folders named by person are used for metrics).")],
    out: Annotated[Path, typer.Option(help="Report folder: index.html, clusters.csv, summary.json, thumbs/.")],
    weights: Annotated[Optional[str], typer.Option(help="Pretrained weights name or folder.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run folder.")] = None,
    method: Annotated[str, typer.Option(help="agglomerative, dbscan or chinese_whispers.")] = "agglomerative",
    threshold: Annotated[float, typer.Option(help="Squared-L2 distance below which faces are the same person.")] = 0.9,
    detect: Annotated[Optional[bool], typer.Option("--detect/--no-detect", help="Detect faces (MTCNN); --no-detect for pre-cropped faces (default: as the model expects).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes detecting and embedding (the bulk runner).")] = 1,
    engine: Annotated[str, typer.Option(help="local, or ray (a Ray cluster: pip install 'faceprint[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="With --engine ray: the cluster.")] = None,
) -> None:
    """Detect and embed every face, cluster them, and write an HTML contact sheet per cluster and a CSV."""
    from faceprint.bulk import Runner
    from faceprint.cluster import cluster_photos
    from faceprint.models import Embedder
    from faceprint.models import face_embedder

    spec = model_spec(weights, checkpoint)
    embedder = Embedder.from_spec(spec)
    runner = Runner(engine, workers, ray_address=ray_address)
    with _progress("cluster") as progress:
        task = progress.add_task("cluster", total=None)
        report = cluster_photos(photos, out, face_embedder(embedder, detect), threshold, method,
                                progress=lambda d, t: progress.update(task, completed=d, total=t), runner=runner,
                                spec=spec)
    _problems(report)
    n = len(set(report.labels.tolist()))
    console.print(f"{len(report.labels)} faces in {n} clusters; open {out / 'index.html'}")
    if report.metrics:
        console.print(" · ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in report.metrics.items()))
