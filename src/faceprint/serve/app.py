"""The web app: a search page and a JSON API (/search, /enroll, /verify, /healthz) over one face index, and for a
photo library its people pages (serve/people.py).

The model and index load once, at startup. Model work runs in one model thread that batches the requests
waiting together (serve/batcher.py); decoding and FAISS searches run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from faceprint.data.images import DETECT_SIDE, ImageLoadError, ImageTooLargeError, decode_bytes
from faceprint.models.pipeline import thumbnail
from faceprint.search import FaceIndex, IndexBusyError, IndexReplacedError, open_index
from faceprint.search.names import InvalidName, valid_name
from faceprint.serve.accounts import Accounts
from faceprint.serve.batcher import ModelBatcher
from faceprint.serve.limits import BodyLimits
from faceprint.serve.login_page import DOCS_PAGE, LOGIN_PAGE
from faceprint.serve.page import PAGE
from faceprint.serve.people_page import PEOPLE_PAGE
from faceprint.serve.policy import LoginLimiter, Policy, SecurityHeaders, cross_site, script_hashes
from faceprint.serve.sessions import add_session_routes

__all__ = ["ServeConfig", "create_app", "refuse_cross_site"]


def refuse_cross_site(request: Request) -> None:
    """Writes only from this server's own pages (or from non-browser clients, which send neither header): a browser
    marks a request another site's page makes with ``Sec-Fetch-Site`` or ``Origin``; CORS does not stop a simple
    multipart POST, this does."""
    why = cross_site(request.scope)
    if why is not None:
        raise HTTPException(403, why)


@dataclass(frozen=True)
class ServeConfig:
    """Upload limits and search defaults."""

    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_k: int = 50
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
    token: str | None = None  # an API key given by environment (role editor); set, every route needs credentials
    auth_required: bool = False  # every route needs a session or key even with no users (listening beyond loopback)
    session_hours: float = 12.0  # a login lasts this long
    max_faces: int = 64  # faces embedded per upload (the largest); the answer says how many more were found
    max_json: int = 64 * 1024  # JSON bodies (people edits, login) are refused past this, before they are read
    max_heavy: int = 4  # expensive reads (waiting groups, suggestions, photo lists) in flight before 503
    show_paths: bool = False  # gallery file paths in search answers (they are the server's own paths)
    allowed_hosts: tuple[str, ...] | None = None  # Host headers served (DNS-rebinding guard); None: any
    max_pending: int = 32  # POST requests in flight before new ones get 503 + Retry-After (memory bound)
    max_batch: int = 32  # images detected and embedded together; 1 turns micro-batching off
    batch_window_ms: float = 2.0  # how long the model thread waits for more requests once one is waiting
    batch_pixels: int = 4_000_000  # pixels of one batch's photos (detection memory grows with them)
    max_side: int | None = None  # photos are reduced to this before detection (None: the one rule, DETECT_SIDE;
    # boxes are given in the original's pixels)


def create_app(index_dir: str | Path, config: ServeConfig | None = None, index: FaceIndex | None = None,
               detect: bool | None = None, backend: str | None = None) -> FastAPI:
    """A FastAPI app serving ``index_dir`` (``detect`` overrides the index's face-detection setting for uploads,
    ``backend`` its inference backend)."""
    cfg = config or ServeConfig()
    ix = index or open_index(index_dir, detect=detect, backend=backend)
    library = None
    if library_tables(ix.store):  # a photo library: enrolments go in as its photos, and its people pages are served
        from faceprint.people import Library

        library = Library(ix)
    model = ModelBatcher(ix.faces, cfg.max_batch, cfg.batch_window_ms, cfg.batch_pixels)
    side = cfg.max_side or ix.faces.detect_side or DETECT_SIDE  # uploads decode as photos do everywhere (bounded too)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        yield
        model.close()
        ix.close()  # writes the FAISS file that in-place enrolments made stale

    app = FastAPI(title="faceprint", description="Face search over a faceprint index.", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # our own /docs page: no third-party script in our origin
    # middleware, innermost first. Bodies: at most two files per request (verify) plus multipart framing; JSON small
    app.add_middleware(BodyLimits, max_body=2 * cfg.max_upload_bytes + (1 << 20), max_pending=cfg.max_pending,
                       max_json=cfg.max_json, heavy=_heavy, max_heavy=cfg.max_heavy, uploads=_upload)
    accounts = Accounts(ix.store.root, session_s=cfg.session_hours * 3600)
    app.add_middleware(Policy, accounts=accounts, required=cfg.auth_required, env_key=cfg.token)  # before any body
    if cfg.allowed_hosts is not None:  # a rebinding page names its own host: refused before any route runs
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(cfg.allowed_hosts))
    app.add_middleware(SecurityHeaders, scripts=script_hashes(PAGE, PEOPLE_PAGE, LOGIN_PAGE, DOCS_PAGE))
    add_session_routes(app, accounts, LoginLimiter())

    ix.store.lock_timeout = min(ix.store.lock_timeout, 5.0)  # a request waits 5 s for another process's write

    @app.exception_handler(IndexReplacedError)
    async def index_replaced(request: Request, exc: IndexReplacedError) -> JSONResponse:  # only a restart helps
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(IndexBusyError)
    async def index_busy(request: Request, exc: IndexBusyError) -> JSONResponse:  # another process is writing
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    async def read_upload(upload: UploadFile) -> bytes:
        data = await upload.read(cfg.max_upload_bytes + 1)
        if len(data) > cfg.max_upload_bytes:
            raise HTTPException(413, f"upload larger than {cfg.max_upload_bytes // (1024 * 1024)} MB")
        return data

    # decodes at once: a full-size frame each (waiting ones hold no worker thread); one semaphore per event loop
    # (the server has one; a test client may run each request on its own)
    decoding: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    async def decode(data: bytes, name: str):  # type: ignore[no-untyped-def]
        async with decoding.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(2)):
            return await run_in_threadpool(decode_sync, data, name)

    def decode_sync(data: bytes, name: str):  # type: ignore[no-untyped-def]
        try:
            return decode_bytes(data, name or "upload", cfg.max_pixels, cfg.formats, side)
        except ImageLoadError as exc:  # the type decides, never the text (it holds the client's file name)
            raise HTTPException(413 if isinstance(exc, ImageTooLargeError) else 415, str(exc)) from None

    async def faces_of(img, all_faces: bool = True):  # type: ignore[no-untyped-def]
        """The model thread's crops and embeddings, with boxes in the uploaded photo's own pixels."""
        crops, vecs, found = await model.run(img, all_faces, cfg.max_faces)  # boxes in the photo's own pixels
        return crops, vecs, found - len(crops)

    def match_json(m) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        out = {"id": m.face.id, "identity": m.face.identity, "distance": round(m.distance, 4),
               "same": m.distance < ix.threshold, "thumb": f"/thumb/{m.face.id}"}
        return {**out, "path": m.face.path} if cfg.show_paths else out

    def search_sync(crops, vecs, k: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        matches = ix.store.search(vecs, k) if len(vecs) else []
        faces = [{"box": c.box, "prob": c.prob, "matches": [match_json(m) for m in ms]} for c, ms in zip(crops, matches)]
        if library is not None and faces:  # a library answers who each face is by its people rule, as /api/who does,
            # and each match names its person
            who = library.describe(crops, vecs)
            owner = library.people_of_faces([m["id"] for f in faces for m in f["matches"]])
            for face, answer in zip(faces, who):
                face["who"] = {k: answer[k] for k in ("person", "name", "similarity", "closest")}
                for m in face["matches"]:  # "same" by the same rule: the match is a face of the person this face is
                    m["person"] = owner.get(m["id"])
                    m["same"] = answer["person"] is not None and m["person"] == answer["person"]
        return faces

    home = PAGE.replace("<body>", '<body data-library="1">', 1) if library is not None else PAGE  # no script change

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return home

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness and sizes, read without catching up (a health check never rebuilds or refills anything)."""
        st = model.stats
        searchable, faces = await run_in_threadpool(lambda: (ix.store.searchable(catch_up=False), len(ix.store)))
        return {"status": "ok", "faces": faces, "searchable": searchable, "threshold": ix.threshold,
                "model": {"batches": st.batches, "images": st.jobs, "largest_batch": st.largest}}

    @app.post("/search")
    async def search(file: UploadFile = File(...), k: int = Form(5)) -> dict[str, Any]:
        """Every face in the photo with its k nearest indexed faces and same/different verdicts."""
        if not 1 <= k <= cfg.max_k:
            raise HTTPException(422, f"k must be between 1 and {cfg.max_k}")
        img = await decode(await read_upload(file), file.filename or "upload")
        crops, vecs, skipped = await faces_of(img)
        faces = await run_in_threadpool(search_sync, crops, vecs, k)
        if not faces:
            raise HTTPException(422, "no face found in the photo")
        return {"threshold": ix.threshold, "faces": faces, "faces_skipped": skipped}

    def guard(request: Request) -> None:
        """Every write: from this server's own pages (or a non-browser client). Who may write is decided before
        (serve/policy.py); this stays as a second check on the routes that change things."""
        refuse_cross_site(request)

    @app.post("/enroll")
    async def enroll(file: UploadFile = File(...), name: str = Form(...), _: None = Depends(guard)) -> dict[str, Any]:
        """Add the largest face of the photo to the index under ``name`` (needs the API token when one is set)."""
        try:
            name = valid_name(name)  # the one name rule, before any work
        except InvalidName as exc:
            raise HTTPException(422, str(exc)) from None
        data = await read_upload(file)
        img = await decode(data, file.filename or "upload")
        crops, vecs, skipped = await faces_of(img)
        if not crops:
            raise HTTPException(422, "no face found in the photo")

        def work() -> dict[str, Any]:
            digest = hashlib.sha256(data).hexdigest()
            if library is not None:  # a photo library: the photo and its face go in as a photo, named by the user
                size = img.info.get("original_size", img.size)
                face, person = library.enroll(digest, data, size, vecs, [c.box for c in crops],
                                              [thumbnail(c.image) for c in crops], name)
                return {"id": face, "identity": name, "person": person, "faces_in_photo": len(crops) + skipped,
                        "faces_skipped": skipped, "box": crops[0].box}
            # the write outside the model thread: waiting for another process's write never holds up searches
            ids = ix.store.add(vecs[:1], [f"upload:{digest[:16]}"], [name], [crops[0].box], [thumbnail(crops[0].image)])
            return {"id": ids[0], "identity": name, "faces_in_photo": len(crops) + skipped, "box": crops[0].box}

        return await run_in_threadpool(work)

    @app.post("/verify")
    async def verify(file_a: UploadFile = File(...), file_b: UploadFile = File(...)) -> dict[str, Any]:
        """Are the largest faces of two photos the same person?"""
        imgs = [await decode(await read_upload(f), f.filename or "upload") for f in (file_a, file_b)]
        (ca, va, _), (cb, vb, _) = await asyncio.gather(*(faces_of(im, all_faces=False) for im in imgs))
        for which, c in (("a", ca), ("b", cb)):
            if not c:
                raise HTTPException(422, f"no face found in photo {which}")
        d = float(((va[0] - vb[0]) ** 2).sum())
        return {"distance": round(d, 4), "same": d < ix.threshold, "threshold": ix.threshold, "boxes": [ca[0].box, cb[0].box]}

    @app.get("/thumb/{face_id}", include_in_schema=False)
    async def thumb(face_id: int) -> FileResponse:
        path = await run_in_threadpool(ix.store.thumb_path, face_id)  # an integer id maps only to this store's files
        if path is None:
            raise HTTPException(404, "no such face")
        return FileResponse(path, media_type="image/jpeg")

    if library is not None:  # its people pages and API beside search
        from faceprint.serve.people import add_people_routes

        async def upload_faces(file: UploadFile):  # type: ignore[no-untyped-def]
            return await faces_of(await decode(await read_upload(file), file.filename or "upload"))

        add_people_routes(app, library, guard, upload_faces)
    app.state.index, app.state.model, app.state.library = ix, model, library
    return app


def _upload(path: str) -> bool:
    """Routes that take photos (multipart, up to the upload cap); every other body is capped at ``max_json``."""
    return path in ("/search", "/enroll", "/verify", "/api/who")


def _heavy(path: str) -> bool:
    """Reads that cost more than a lookup: clustering waiting faces, a person's suggestions, photo lists."""
    return path.startswith(("/api/waiting", "/api/people/", "/api/photos"))


def library_tables(store: Any) -> bool:
    """Whether an index is a photo library (``faceprint library add`` made it)."""
    return bool(store.has_table("face_people"))

