"""The waiting page's actions and the links between pages, in a real browser (headless Chromium): "Not a face" removes
a group's faces, "Not this group" leaves each face waiting alone, counts read "1 face", a search match links to its
person and the photos page says whose photos they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.people import open_library
from tests.people.conftest import PatternNet, live_server
from tests.people.test_browser import ARTIFACTS, CHROMIUM


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_waiting_page_actions_and_links(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    from faceprint.serve import create_app

    pats = PatternNet.patterns(3, seed=33)
    rng = np.random.default_rng(2)
    files = []
    for who, n in ((0, 4), (1, 2), (2, 2)):  # one person (4 faces); two groups of 2 that wait (3 found a person)
        for k in range(n):
            f = tmp_path / "in" / f"{who}-{k}.png"
            f.parent.mkdir(exist_ok=True)
            PatternNet.image(pats[who], rng).save(f)
            files.append(f)
    lib = open_library(tmp_path / "lib", {"weights": "pattern"}, embedder=PatternNet.embedder(), detect=False)
    lib.add_photos(files)
    (alice,) = lib.people()
    lib.name(alice.id, "Alice Wonderland-Longname")
    assert lib.stats()["waiting"] == 4
    with live_server(create_app(tmp_path / "lib", index=lib.index)) as port, playwright.sync_playwright() as p:
        base = f"http://127.0.0.1:{port}"
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(f"{base}/people#/waiting")
        page.wait_for_selector(".group")
        assert page.locator(".group").count() == 2
        assert page.locator(".name-group").all_inner_texts() == ["Name 2 faces", "Name 2 faces"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "people_waiting.png"), full_page=True)
        first = [int(i) for i in page.locator(".group").first.locator(".face").evaluate_all("els => els.map(e => e.dataset.id)")]
        page.locator(".group").first.locator(".not-face").click()
        page.wait_for_function("() => document.querySelectorAll('.group').length === 1")
        assert lib.stats()["waiting"] == 2 and not lib.store.faces(first)  # dismissed: gone from the library
        page.locator(".group").first.locator(".not-group").click()
        page.wait_for_function("() => document.querySelectorAll('.group').length === 2")  # each face alone now
        assert page.locator(".name-group").all_inner_texts() == ["Name 1 face", "Name 1 face"]
        assert lib.stats()["waiting"] == 2 and len(lib.people()) == 1  # still waiting, nobody founded
        third = tmp_path / "in" / "2-third.png"  # a third photo of the pattern the two set-apart faces show:
        PatternNet.image(pats[2], rng).save(third)  # three waiting faces would found a person (min_faces 3) ...
        lib.add_photos([third])
        assert len(lib.people()) == 1 and lib.stats()["waiting"] == 3  # ... but the two were set apart: nobody new

        # the people grid gives the whole name on hover; the photos page says whose photos they are
        page.goto(f"{base}/people#/")
        page.wait_for_selector(".card.person")
        assert page.locator(".card.person").first.get_attribute("title") == "Alice Wonderland-Longname"
        page.goto(f"{base}/people#/photos/{alice.id}")
        page.wait_for_selector("#photos-title")
        assert page.inner_text("#photos-title") == "Photos of Alice Wonderland-Longname"

        # a search for Alice: the answer names her by the people rule and each match links to her page
        page.goto(f"{base}/")
        page.set_input_files("#file", str(files[0]))
        page.wait_for_selector(".who")
        assert page.inner_text(".who").startswith("Alice Wonderland-Longname (")
        link = page.locator(".match .person-link").first
        assert link.get_attribute("href") == f"/people#/person/{alice.id}"
        link.click()
        page.wait_for_function("() => (document.querySelector('#person-title') || {textContent: ''}).textContent.startsWith('Alice')")
        page.screenshot(path=str(ARTIFACTS / "search_to_person.png"))
        browser.close()
    lib.close()
