"""One decode rule and one answer: a camera-sized photo added by the CLI is the same photo to the server, and "who
is in this photo", search and the person's page give one answer with one number for a face."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from faceprint.people import open_library
from faceprint.serve import create_app
from tests.conftest import SHARED
from tests.people.conftest import PatternNet


def test_a_photo_added_by_the_cli_is_named_through_enroll(tmp_path: Path, tiny_weights: str) -> None:  # noqa: F811
    """A 2,600-px photo: `library add` and the server decode it the same way, so /enroll finds the face the CLI
    added (before, the server's reduced decode gave a vector 0.0046 away and /enroll answered 409)."""
    group = SHARED / "samples" / "multiface.jpg"
    if not group.is_file():
        pytest.skip("needs ../shared/data/samples")
    from faceprint.cli.main import app

    photos = tmp_path / "photos"
    photos.mkdir()
    big = Image.open(group).convert("RGB")
    big = big.resize((2600, round(2600 * big.height / big.width)), Image.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=92)
    (photos / "big.jpg").write_bytes(buf.getvalue())
    r = CliRunner().invoke(app, ["library", "add", str(tmp_path / "lib"), str(photos), "--weights", tiny_weights, "--detect"])
    assert r.exit_code == 0, r.output
    lib = open_library(tmp_path / "lib")
    before = lib.stats()
    assert before["photos"] == 1 and len(lib.store) >= 4
    c = TestClient(create_app(tmp_path / "lib", index=lib.index))
    out = c.post("/enroll", data={"name": "Ada"}, files={"file": ("big.jpg", buf.getvalue(), "image/jpeg")})
    assert out.status_code == 200, out.text
    assert lib.stats()["photos"] == 1 and len(lib.store) == before["faces"]  # the CLI's face, named; nothing added
    assert lib.person(out.json()["person"]).name == "Ada"
    boxes = [f.box for f in lib.store.faces(range(1, len(lib.store) + 1)).values()]
    assert max(b[2] for b in boxes) > 2048  # boxes in the 2,600-px original's pixels, not the reduced image's
    lib.close()


def emb_vec(lib, image):  # type: ignore[no-untyped-def]
    """The library model's vector of one ready face image."""
    return lib.index.faces.embed_crops([type("C", (), {"image": image})()])[0]


def test_who_search_and_the_person_page_agree_on_a_person_just_named(tmp_path: Path) -> None:
    emb = PatternNet.embedder()
    rng = np.random.default_rng(4)
    pats = PatternNet.patterns(3, seed=21)
    files = []
    for who, n in ((0, 4), (1, 4)):
        for k in range(n):
            f = tmp_path / "in" / f"{who}-{k}.png"
            f.parent.mkdir(exist_ok=True)
            PatternNet.image(pats[who], rng).save(f)
            files.append(f)
    lib = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=emb, detect=False)
    lib.add_photos(files)
    pid = next(p.id for p in lib.people() if p.faces == 4)
    lib.name(pid, "Jennifer")
    c = TestClient(create_app(tmp_path / "lib", index=lib.index))
    sim = lib.similarity()
    at_threshold = sim(lib.threshold)
    for pattern, expected in ((pats[0], "Jennifer"), (pats[2], None)):  # someone named, and someone new
        buf = io.BytesIO()
        PatternNet.image(pattern, rng).save(buf, format="PNG")
        (who,) = c.post("/api/who", files={"file": ("q.png", buf.getvalue(), "image/png")}).json()["faces"]
        (face,) = c.post("/search", files={"file": ("q.png", buf.getvalue(), "image/png")}).json()["faces"]
        assert face["who"] == {k: who[k] for k in ("person", "name", "similarity", "closest")}  # one answer
        assert who["name"] == expected and (who["person"] is None) == (expected is None)
        if expected:  # named: the number shown is the decision's, above the threshold's similarity
            assert who["similarity"] > at_threshold
            top = face["matches"][0]
            assert top["person"] == who["person"] and top["same"]  # the match links to its person, "same" by the rule
        else:  # nobody: the number is the closest person's by the same rule, below it (never "new, 0.99")
            assert who["similarity"] <= at_threshold and who["closest"] is not None
            assert not any(m["same"] for m in face["matches"])
    # two faces of Jennifer in one photo: one is her, the other is nobody, and its number is not hers (the photo rule
    # blocks her, so her closeness is not shown as that face's similarity)
    twin = lib.describe([type("C", (), {"box": None})()] * 2, np.stack([emb_vec(lib, PatternNet.image(pats[0], rng))] * 2))
    assert [t["name"] for t in twin] == ["Jennifer", None]
    assert twin[1]["similarity"] <= at_threshold and (twin[1]["closest"] or {}).get("id") != pid
    person = c.get(f"/api/people/{pid}").json()
    for s in person["suggestions"]:
        assert s["similarity"] <= at_threshold  # not the same person: below the rule's line too
