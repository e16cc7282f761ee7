"""Screenshots of the people pages over a real library (the one benchmarks/people.py leaves in its work folder).

Usage: python benchmarks/people_screens.py [--library DIR] [--out benchmarks/results]
Writes people_grid.png (the people grid) and people_person.png (the largest named person's review grid); needs
the Debian chromium package and playwright (never `playwright install`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from orl_common import casia_embedder  # noqa: E402

from faceprint.people import open_library  # noqa: E402
from faceprint.serve import create_app  # noqa: E402
from tests.search.conftest import live_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=Path(tempfile.gettempdir()) / "faceprint-people" / "library")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    lib = open_library(args.library, embedder=casia_embedder())
    named = [p for p in lib.people() if p.name]
    person = max(named, key=lambda p: (p.faces <= 40, p.faces))  # a full page, not hundreds of faces
    with live_server(create_app(args.library, index=lib.index)) as port, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1150, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/people")
        page.wait_for_selector(".card.person")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(args.out / "people_grid.png"))
        page.goto(f"http://127.0.0.1:{port}/people#/person/{person.id}")
        page.wait_for_selector("#faces .face")
        page.locator("#faces .face").nth(1).click()
        page.locator("#faces .face").nth(2).click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(args.out / "people_person.png"))
        browser.close()
    print(f"wrote {args.out / 'people_grid.png'} and {args.out / 'people_person.png'} (person #{person.id} {person.name})")


if __name__ == "__main__":
    main()
