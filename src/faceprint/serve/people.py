"""The people pages' JSON API and the photos they show, served beside search when the index is a photo library.

Reads: ``GET /api/people``, ``/api/people/{id}`` (faces and merge suggestions), ``/api/waiting`` (groups of faces
with no person), ``/api/photos/{id}``, ``/api/photos?people=1,2`` (photos with all of them), ``/photo/{id}`` (the
file, by id only). Writes (same guard as /enroll: this server's own pages, and the API token when one is set):
name, merge, hide, split, move, reject ("not this person"), dismiss, name a group; ``POST /api/who`` reads a photo
and answers who is in it. Library errors choose their status by type: unknown → 404, malformed → 422, refused
edit → 409. Reads are open, as search is (a token guards writes only): serve a private library on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
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


def add_people_routes(app: FastAPI, lib: Library, guard: Callable[..., Any],
                      upload_faces: Callable[[UploadFile], Awaitable[tuple[list[Any], Any]]]) -> None:
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
    async def people(hidden: bool = False) -> dict[str, Any]:
        found = await call(lib.people, hidden)
        return {"people": [_person(p) for p in found], "stats": await call(lib.stats)}

    @api.get("/api/people/{person}")
    async def person(person: int) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            p = lib.person(person)
            hints = lib.suggestions(p.id)
            return {**_person(p), "faces_list": [_face(f) for f in lib.faces_of(p.id)],
                    "suggestions": [{**_person(q), "similarity": round(s, 4)} for q, s, _ in hints]}
        return await call(read)

    @api.get("/api/waiting")
    async def waiting() -> dict[str, Any]:
        groups = await call(lib.waiting_groups)
        return {"groups": [[_face(f) for f in g] for g in groups]}

    @api.get("/api/photos")
    async def photos(people: str) -> dict[str, Any]:
        try:
            ids = [int(p) for p in people.split(",") if p.strip()]
        except ValueError:
            raise HTTPException(422, "people: comma-separated person ids") from None
        if not ids:
            raise HTTPException(422, "people: give at least one person id")
        found = await call(lib.photos_with, ids)
        return {"photos": [{"id": ph.id, "taken_at": ph.taken_at, "faces": [_face(f) for f in ph.faces],
                            "url": f"/photo/{ph.id}"} for ph in found]}

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

    @api.post("/api/faces/dismiss")
    async def dismiss(body: Faces, _: None = Depends(guard)) -> dict[str, Any]:
        return {"dismissed": await call(lib.dismiss, body.faces)}

    @api.post("/api/who")
    async def who(file: UploadFile = File(...)) -> dict[str, Any]:
        crops, vecs = await upload_faces(file)
        if not crops:
            raise HTTPException(422, "no face found in the photo")
        return {"faces": await call(lib.describe, crops, vecs)}

