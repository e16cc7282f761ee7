"""The people pages in a real browser (headless Chromium): naming, splitting, merging, "not this person" followed
by another `library add` (the face stays out), and the photo view with its boxes and names.

The library holds real image files embedded through the library's own pipeline (PatternNet: one random colour
pattern per person) and a group photo whose two faces are given with their boxes. Needs the Debian ``chromium``
package (CI installs it); skipped with a reason when it is absent. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.models.pipeline import thumbnail
from faceprint.people import Detected, Library, open_library
from tests.people.conftest import PatternNet, live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def make_library(tmp_path: Path) -> tuple[Library, np.ndarray, Path]:
    emb = PatternNet.embedder()
    pats = PatternNet.patterns(4, seed=11)
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    files = []
    for who, n in ((0, 4), (1, 4), (2, 3)):
        for k in range(n):
            f = photos / f"p{who}-{k}.png"
            PatternNet.image(pats[who], rng).save(f)
            files.append(f)
    lib = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=emb, detect=False)
    lib.add_photos(files)
    tiles = [PatternNet.image(pats[w], rng) for w in (0, 1)]  # a group photo: person 0 left, person 1 right
    group = Image.new("RGB", (160, 80), (255, 255, 255))
    group.paste(tiles[0], (8, 8))
    group.paste(tiles[1], (88, 8))
    gpath = photos / "group.png"
    group.save(gpath)
    vecs = lib.index.faces.embed_crops([type("C", (), {"image": t})() for t in tiles])  # type: ignore[list-item]
    lib.add_detected([Detected("group", str(gpath), gpath.stat().st_size, 160, 80, "2026:01:02 10:00:00", vecs,
                               [[8.0, 8.0, 72.0, 72.0], [88.0, 8.0, 152.0, 72.0]], [thumbnail(t) for t in tiles])])
    return lib, pats, photos


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_people_pages_in_a_real_browser(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    from faceprint.serve import create_app

    lib, pats, photos = make_library(tmp_path)
    assert [p.faces for p in lib.people()] == [5, 5, 3]
    alice = lib.people()[0].id
    ARTIFACTS.mkdir(exist_ok=True)
    with live_server(create_app(tmp_path / "lib", index=lib.index)) as port, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        base = f"http://127.0.0.1:{port}/people"
        page.goto(base)
        page.wait_for_selector(".card.person")
        assert page.locator(".card.person").count() == 3

        # naming: on the person page, then the grid lists the named person first
        page.goto(f"{base}#/person/{alice}")
        page.wait_for_selector("#faces .face")
        page.fill("#name", "Alice")
        page.click("#save-name")
        page.wait_for_function("() => document.querySelector('#person-title').textContent.startsWith('Alice')")
        page.screenshot(path=str(ARTIFACTS / "people_person.png"), full_page=True)
        page.goto(base)
        page.wait_for_selector(".card.person")
        assert page.locator(".card.person .name").first.inner_text() == "Alice"
        page.screenshot(path=str(ARTIFACTS / "people_grid.png"), full_page=True)

        # splitting two faces off into a new person, then merging it back from the suggestions
        page.goto(f"{base}#/person/{alice}")
        page.wait_for_selector("#faces .face")
        ids = page.locator("#faces .face").evaluate_all("els => els.map(e => +e.dataset.id)")
        page.locator("#faces .face").nth(0).click()
        page.locator("#faces .face").nth(1).click()
        page.click("#split")
        page.wait_for_function("() => document.querySelectorAll('#faces .face').length === 3")
        split_off = {lib.db.execute("SELECT person_id FROM face_people WHERE face_id = ?", (ids[0],)).fetchone()[0]}
        assert split_off != {alice}
        page.wait_for_selector(".suggestion button.merge")
        page.locator(".suggestion button.merge").first.click()
        page.wait_for_function("() => document.querySelectorAll('#faces .face').length === 5")
        assert {f.id for f in lib.faces_of(alice)} == set(ids)

        # "not this person" for one face; another library add (a second opener, as another process) keeps it out
        rejected = ids[0]  # a face of a one-person photo (the group photo keeps hers)
        page.locator(f"#faces .face[data-id='{rejected}']").click()
        page.click("#reject")
        page.wait_for_function("() => document.querySelectorAll('#faces .face').length === 4")
        rng = np.random.default_rng(9)
        more = []
        for k in range(3):
            f = photos / f"more-{k}.png"
            PatternNet.image(pats[0], rng).save(f)
            more.append(f)
        other = open_library(tmp_path / "lib", embedder=PatternNet.embedder())
        report = other.add_photos(more)
        other.retry_waiting()
        other.close()
        assert report.joined == 3
        page.reload()
        page.wait_for_function("() => document.querySelectorAll('#faces .face').length === 7")
        shown = page.locator("#faces .face").evaluate_all("els => els.map(e => +e.dataset.id)")
        assert rejected not in shown

        # photos of Alice together with the person on the right of the group photo: that one photo
        other_person = next(q.id for q in lib.people() if q.id != alice and q.faces == 5)
        page.goto(f"{base}#/person/{alice}")
        page.wait_for_selector("#with option[value='%d']" % other_person, state="attached")
        page.select_option("#with", str(other_person))
        page.wait_for_selector("#photos a")
        assert page.locator("#photos a").count() == 1

        # the photo view: both faces of the group photo boxed and named
        group = lib.db.execute("SELECT id FROM photos WHERE hash = 'group'").fetchone()[0]
        page.goto(f"{base}#/photo/{group}")
        page.wait_for_selector("#photo .box")
        labels = page.locator("#photo .box span").all_inner_texts()
        assert len(labels) == 2 and labels[0] == "Alice" and labels[1].startswith("Unnamed #")
        box = page.locator("#photo .box").first.bounding_box()
        img = page.locator("#photo-img").bounding_box()
        assert box is not None and img is not None and box["x"] - img["x"] == pytest.approx(8 * img["width"] / 160, abs=2)
        page.screenshot(path=str(ARTIFACTS / "people_photo.png"))
        browser.close()
    lib.close()
