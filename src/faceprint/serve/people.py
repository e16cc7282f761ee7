"""The people pages' JSON API and the photos they show, served beside search when the index is a photo library.

Reads: ``GET /api/people``, ``/api/people/{id}`` (faces and merge suggestions), ``/api/waiting`` (groups of faces
with no person), ``/api/photos/{id}``, ``/api/photos?people=1,2`` (photos with all of them), ``/photo/{id}`` (the
file, by id only). Writes (same guard as /enroll: this server's own pages, and the API token when one is set):
name, merge, hide, split, move, reject ("not this person"), dismiss, name a group; ``POST /api/who`` reads a photo
and answers who is in it. Library errors choose their status by type: unknown → 404, malformed → 422, refused
edit → 409. Who may read and who may write is decided before any route runs (serve/policy.py).

Lists come in pages: ``?limit=N`` and the ``next`` cursor of the previous page as ``?cursor=``; ``next`` is null on
the last page. A person's faces page by face id (a face added meanwhile never shifts the pages); the other lists
page by position in their order.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from faceprint.people import Library, LibraryEditError, UnknownInLibraryError
from faceprint.people.edits import LibraryInputError
from faceprint.people.tables import Face, Person
from faceprint.serve.people_page import PEOPLE_PAGE

__all__ = ["add_people_routes"]


class Name(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class Faces(BaseModel):
    faces: list[int] = Field(min_length=1, max_length=10_000)


class FacesTo(Faces):
    person: int


class FacesNamed(Faces):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class Merge(BaseModel):
    sources: list[int] = Field(min_length=1, max_length=1000)


class Hidden(BaseModel):
    hidden: bool = True


def _person(p: Person) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "faces": p.faces, "hidden": p.hidden,
            "thumb": f"/thumb/{p.feature_face}" if p.feature_face is not None else None}


def _face(f: Face) -> dict[str, Any]:
    return {"id": f.id, "photo": f.photo_id, "person": f.person_id, "name": f.person_name, "how": f.how, "box": f.box,
            "thumb": f"/thumb/{f.id}"}


def _cursor(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{value}".encode()).decode().rstrip("=")


def _uncursor(cursor: str | None, kind: str) -> int:
    """The position a cursor stands for (0 with none); a cursor not made here is a 422."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith(kind) and text[len(kind):].isdigit() and len(text) < 19:  # within SQLite's integers
            return int(text[len(kind):])
    except (ValueError, UnicodeDecodeError):
        pass
    raise HTTPException(422, "cursor: pass the `next` value of the previous page")


def _slice(items: list[Any], cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    start = _uncursor(cursor, "o")
    page = items[start : start + limit]
    return page, _cursor("o", start + limit) if start + limit < len(items) else None


def add_people_routes(app: FastAPI, lib: Library, guard: Callable[..., Any],
                      upload_faces: Callable[[UploadFile], Awaitable[tuple[list[Any], Any, int]]]) -> None:
    """Register the people page and API on ``app``; ``guard`` is the write dependency, ``upload_faces`` reads an
    upload into (crops, vectors) through the server's model thread."""
    api = app  # routes registered on the app itself (a flat route table: tests walk it for the write guard)

    @app.exception_handler(LibraryEditError)
    async def edit_refused(request: Request, exc: LibraryEditError) -> JSONResponse:
        status = 404 if isinstance(exc, UnknownInLibraryError) else 422 if isinstance(exc, LibraryInputError) else 409
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    @app.get("/people", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PEOPLE_PAGE

    @api.get("/api/people")
    async def people(hidden: bool = False, limit: int = Query(200, ge=1, le=1000), cursor: str | None = None) -> dict[str, Any]:
        """People, named first; a page of ``limit``."""
        found, nxt = _slice(await call(lib.people, hidden), cursor, limit)
        return {"people": [_person(p) for p in found], "next": nxt, "stats": await call(lib.stats)}

    @api.get("/api/people/{person}")
    async def person(person: int, limit: int = Query(200, ge=1, le=1000), cursor: str | None = None) -> dict[str, Any]:
        """A person, a page of their faces and (on the first page) who they might also be."""
        after = _uncursor(cursor, "f")

        def read() -> dict[str, Any]:
            p = lib.person(person)
            faces = lib.faces_of(p.id, after=after, limit=limit + 1)
            hints = lib.suggestions(p.id) if not cursor else []
            return {**_person(p), "faces_list": [_face(f) for f in faces[:limit]],
                    "next": _cursor("f", faces[limit - 1].id) if len(faces) > limit else None,
                    "suggestions": [{**_person(q), "similarity": round(s, 4)} for q, s, _ in hints]}
        return await call(read)

    @api.get("/api/waiting")
    async def waiting(limit: int = Query(10, ge=1, le=50), cursor: str | None = None) -> dict[str, Any]:
        """Faces with no person in groups to name at once, largest groups first; a page of ``limit`` groups."""
        groups, nxt = _slice(await call(lib.waiting_groups), cursor, limit)
        return {"groups": [[_face(f) for f in g] for g in groups], "next": nxt}

    @api.get("/api/photos")
    async def photos(people: str = Query(..., max_length=2000), limit: int = Query(60, ge=1, le=500),
                     cursor: str | None = None) -> dict[str, Any]:
        """Photos with all of ``people`` (comma-separated ids) in them, newest first; a page of ``limit``."""
        try:
            ids = [int(p) for p in people.split(",") if p.strip()]
        except ValueError:
            raise HTTPException(422, "people: comma-separated person ids") from None
        if not ids or len(ids) > 50:
            raise HTTPException(422, "people: give 1 to 50 person ids")
        page, nxt = _slice(await call(lib.photo_ids_with, ids), cursor, limit)
        found = [ph for ph in await call(lambda: [lib.photo(i) for i in page]) if ph is not None]
        names = await call(lambda: {p: lib.person(p).name for p in ids})
        return {"photos": [{"id": ph.id, "taken_at": ph.taken_at, "faces": [_face(f) for f in ph.faces],
                            "url": f"/photo/{ph.id}"} for ph in found], "next": nxt,
                "people": [{"id": p, "name": n} for p, n in names.items()]}

    @api.get("/api/photos/{photo}")
    async def photo(photo: int) -> dict[str, Any]:
        ph = await call(lib.photo, photo)
        if ph is None:
            raise HTTPException(404, "no such photo")
        return {"id": ph.id, "width": ph.width, "height": ph.height, "taken_at": ph.taken_at, "url": f"/photo/{ph.id}",
                "faces": [_face(f) for f in ph.faces]}

    @app.get("/photo/{photo}", include_in_schema=False)
    async def photo_file(photo: int) -> FileResponse:
        path = await call(lib.photo_path, photo)  # an integer id maps only to the library's own photos
        if path is None:
            raise HTTPException(404, "no such photo (or its file has moved)")
        return FileResponse(path)

    @api.post("/api/people/{person}/name")
    async def name(person: int, body: Name, _: None = Depends(guard)) -> dict[str, Any]:
        return {"person": await call(lib.name, person, body.name)}

    @api.post("/api/people/{person}/merge")
    async def merge(person: int, body: Merge, _: None = Depends(guard)) -> dict[str, Any]:
        return {"person": await call(lib.resolve, person), "moved": await call(lib.merge, person, body.sources)}

    @api.post("/api/people/{person}/hide")
    async def hide(person: int, body: Hidden, _: None = Depends(guard)) -> dict[str, Any]:
        return {"person": await call(lib.hide, person, body.hidden), "hidden": body.hidden}

    @api.post("/api/faces/split")
    async def split(body: FacesNamed, _: None = Depends(guard)) -> dict[str, Any]:
        pid = await call(lib.name_faces, body.faces, body.name) if body.name else await call(lib.split, body.faces)
        return {"person": pid}

    @api.post("/api/faces/move")
    async def move(body: FacesTo, _: None = Depends(guard)) -> dict[str, Any]:
        return {"person": await call(lib.move, body.faces, body.person)}

    @api.post("/api/faces/reject")
    async def reject(body: Faces, _: None = Depends(guard)) -> dict[str, Any]:
        return {"rejected": await call(lib.reject, body.faces)}

    @api.post("/api/faces/apart")
    async def apart(body: Faces, _: None = Depends(guard)) -> dict[str, Any]:
        """Waiting faces that are not one person ("Not this group"): each waits alone from now on."""
        return {"apart": await call(lib.set_apart, body.faces)}

    @api.post("/api/faces/dismiss")
    async def dismiss(body: Faces, _: None = Depends(guard)) -> dict[str, Any]:
        return {"dismissed": await call(lib.dismiss, body.faces)}

    @api.post("/api/who")
    async def who(file: UploadFile = File(...)) -> dict[str, Any]:
        crops, vecs, skipped = await upload_faces(file)
        if not crops:
            raise HTTPException(422, "no face found in the photo")
        return {"faces": await call(lib.describe, crops, vecs), "faces_skipped": skipped}

