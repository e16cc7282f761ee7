"""The people API: reads, edits, error statuses chosen by type, the write guard, photo files by id only, who-is-in."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceprint.people import Library, open_library
from faceprint.serve import ServeConfig, create_app
from tests.people.conftest import PatternNet, Photos


@pytest.fixture()
def lib_dir(tmp_path: Path, tiny_weights: str) -> Path:
    lib = open_library(tmp_path / "lib", {"weights": tiny_weights}, detect=False)
    ph = Photos()
    lib.add_detected([ph(0) for _ in range(3)] + [ph(1) for _ in range(3)] + [ph(0, 1), ph(2), ph(2)])
    lib.close()
    return tmp_path / "lib"


def test_reads_and_edits_through_the_api(lib_dir: Path) -> None:
    c = TestClient(create_app(lib_dir))
    people = c.get("/api/people").json()
    assert [p["faces"] for p in people["people"]] == [4, 4] and people["stats"]["waiting"] == 2
    a, b = (p["id"] for p in people["people"])
    assert c.post(f"/api/people/{b}/name", json={"name": "Bea"}).status_code == 200
    assert [p["name"] for p in c.get("/api/people").json()["people"]] == ["Bea", None]  # named first
    (group,) = c.get("/api/waiting").json()["groups"]
    named = c.post("/api/faces/split", json={"faces": [f["id"] for f in group], "name": "Cy"}).json()["person"]
    person = c.get(f"/api/people/{named}").json()
    assert person["name"] == "Cy" and len(person["faces_list"]) == 2
    first = person["faces_list"][0]["id"]
    assert c.post("/api/faces/reject", json={"faces": [first]}).json() == {"rejected": 1}
    assert c.get(f"/api/people/{named}").json()["faces"] == 1
    both = c.get(f"/api/photos?people={a},{b}").json()["photos"]
    assert len(both) == 1 and c.get(both[0]["url"]).status_code == 404  # the photo's file is not on this disk


def test_errors_choose_their_status_by_type(lib_dir: Path) -> None:
    c = TestClient(create_app(lib_dir))
    a, b = (p["id"] for p in c.get("/api/people").json()["people"])
    assert c.post("/api/people/999/name", json={"name": "X"}).status_code == 404
    assert c.post("/api/faces/move", json={"faces": [12345], "person": a}).status_code == 404
    refused = c.post(f"/api/people/{a}/merge", json={"sources": [b]})
    assert refused.status_code == 409 and "same photo" in refused.json()["detail"]
    c.post(f"/api/people/{a}/name", json={"name": "Al"})
    assert c.post(f"/api/people/{b}/name", json={"name": "Al"}).status_code == 409
    assert c.post(f"/api/people/{b}/name", json={"name": "  "}).status_code == 422  # past the schema: the library's rule
    assert c.post(f"/api/people/{b}/name", json={"name": "a/b"}).status_code == 422  # malformed: 422, as /enroll
    assert c.get("/api/photos?people=x").status_code == 422


def test_writes_are_refused_cross_site_and_without_the_token(lib_dir: Path) -> None:
    c = TestClient(create_app(lib_dir, ServeConfig(token="s3cret")))
    assert c.get("/api/people").status_code == 401  # a token closes reads too
    a = c.get("/api/people", headers={"x-api-key": "s3cret"}).json()["people"][0]["id"]
    body = {"name": "Mallory"}
    assert c.post(f"/api/people/{a}/name", json=body).status_code == 401
    bad = c.post(f"/api/people/{a}/name", json=body, headers={"Authorization": "Bearer s3cret", "Sec-Fetch-Site": "cross-site"})
    assert bad.status_code == 403
    assert c.get(f"/api/people/{a}", headers={"x-api-key": "s3cret"}).json()["name"] is None  # nothing was written
    assert c.post(f"/api/people/{a}/name", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_photo_files_are_served_by_id_only(tmp_path: Path) -> None:
    emb = PatternNet.embedder()
    rng = np.random.default_rng(0)
    photo = tmp_path / "in" / "one.png"
    photo.parent.mkdir()
    PatternNet.image(PatternNet.patterns(1)[0], rng).save(photo)
    lib = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=emb, detect=False)
    lib.add_photos([photo])
    app = create_app(tmp_path / "lib", index=lib.index)
    c = TestClient(app)
    assert c.get("/photo/1").content == photo.read_bytes()
    assert c.get("/photo/2").status_code == 404
    assert c.get("/photo/one.png").status_code == 422  # not an id: no route maps a name or a path to a file
    import inspect

    from fastapi.responses import FileResponse

    files = [r for r in app.routes if inspect.signature(getattr(r, "endpoint", lambda: None)).return_annotation in
             (FileResponse, "FileResponse")]
    assert {r.path for r in files} == {"/thumb/{face_id}", "/photo/{photo}"}
    for r in files:  # every route that answers with a file takes integer ids only
        assert all(p.annotation in (int, "int") for p in inspect.signature(r.endpoint).parameters.values()), r.path


def test_who_is_in_an_uploaded_photo(tmp_path: Path) -> None:
    emb = PatternNet.embedder()
    rng = np.random.default_rng(1)
    pats = PatternNet.patterns(2, seed=5)
    files = []
    for k in range(4):
        f = tmp_path / "in" / f"{k}.png"
        f.parent.mkdir(exist_ok=True)
        PatternNet.image(pats[0], rng).save(f)
        files.append(f)
    lib: Library = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=emb, detect=False)
    lib.add_photos(files)
    (p,) = lib.people()
    lib.name(p.id, "Pat")
    c = TestClient(create_app(tmp_path / "lib", index=lib.index))
    for pattern, expected in ((pats[0], "Pat"), (pats[1], None)):
        buf = io.BytesIO()
        PatternNet.image(pattern, rng).save(buf, format="PNG")
        (face,) = c.post("/api/who", files={"file": ("q.png", buf.getvalue(), "image/png")}).json()["faces"]
        assert face["name"] == expected
        assert (face["similarity"] > 0.5) == (expected is not None)
    assert lib.stats()["photos"] == 4  # asking does not add


def test_every_write_route_has_the_guard(lib_dir: Path) -> None:
    """Each POST route that changes people refuses a cross-site request and one without the token, before its
    handler runs (the account routes have their own tests: tests/search/test_auth.py)."""
    app = create_app(lib_dir, ServeConfig(token="s3cret"))
    c = TestClient(app)
    posts = [r.path for r in app.routes if "POST" in getattr(r, "methods", set())]
    writes = [p for p in posts if p not in ("/search", "/verify", "/api/who", "/login", "/logout") and "/users" not in p]
    assert {w.rsplit("/", 1)[-1] for w in writes} == {"enroll", "name", "merge", "hide", "split", "move", "reject", "dismiss",
                                                      "apart"}
    key = {"Authorization": "Bearer s3cret"}
    before = c.get("/api/people", headers=key).json()
    for path in writes:
        url = path.replace("{person}", "1")
        assert c.post(url, json={}).status_code == 401, path
        crossed = c.post(url, json={}, headers={**key, "Sec-Fetch-Site": "cross-site"})
        assert crossed.status_code == 403, path
    assert c.get("/api/people", headers=key).json() == before


def test_enroll_on_a_library_adds_a_photo_and_names_its_person(tmp_path: Path) -> None:
    lib = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=PatternNet.embedder(), detect=False)
    c = TestClient(create_app(tmp_path / "lib", index=lib.index))
    buf = io.BytesIO()
    PatternNet.image(PatternNet.patterns(1)[0], np.random.default_rng(0)).save(buf, format="PNG")
    for _ in range(2):  # the same photo twice: one photo, one face, the same person
        out = c.post("/enroll", data={"name": "Eve"}, files={"file": ("e.png", buf.getvalue(), "image/png")}).json()
        assert out["identity"] == "Eve"
    assert lib.stats()["photos"] == 1 and [(p.name, p.faces) for p in lib.people()] == [("Eve", 1)]
    assert lib.db.execute("SELECT how FROM face_people").fetchall() == [("user",)]


def test_enroll_of_a_group_photo_keeps_every_face_and_names_the_right_one(tmp_path: Path) -> None:
    from faceprint.people import Detected
    from faceprint.serve.app import create_app as make

    lib = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=PatternNet.embedder(), detect=False)
    vecs = np.eye(48, dtype=np.float32)[:2]
    faces, person = lib.enroll("h" * 64, b"x" * 10, (100, 50), vecs, [[0, 0, 10, 10], [50, 0, 60, 10]], [None, None], "Ann")
    assert lib.stats()["faces"] == 2 and lib.person(person).name == "Ann" and lib.faces_of(person)[0].id == faces
    assert lib.add_detected([Detected("h" * 64, "/x.jpg", 10, 100, 50, None, vecs, [None, None], [None, None])]).faces == 0
    # the same photo again, its first face dismissed meanwhile: refused, never another face named instead
    lib.dismiss([faces])
    from faceprint.people import LibraryEditError

    with pytest.raises(LibraryEditError, match="not this face"):
        lib.enroll("h" * 64, b"x" * 10, (100, 50), vecs, [[0, 0, 10, 10], [50, 0, 60, 10]], [None, None], "Bob")
    assert [(p.name, p.faces) for p in lib.people(hidden=True)] == [("Ann", 0)]  # nothing was named Bob
    # a name the library refuses is refused before anything is added
    c = TestClient(make(tmp_path / "lib", index=lib.index))
    buf = io.BytesIO()
    PatternNet.image(PatternNet.patterns(1)[0], np.random.default_rng(0)).save(buf, format="PNG")
    bad = c.post("/enroll", data={"name": "Tab\tName"}, files={"file": ("e.png", buf.getvalue(), "image/png")})
    assert bad.status_code == 422 and lib.stats()["photos"] == 1
