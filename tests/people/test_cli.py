"""`faceprint library ...` end to end on tiny data: add (a rerun skips by content, bad files listed), people, edits,
one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from faceprint.cli.main import app

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_library_commands(tiny_faces: Path, tmp_path: Path, tiny_weights: str) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in sorted(tiny_faces.rglob("*.png"))[:20]:
        (photos / f"{src.parent.name}-{src.name}").write_bytes(src.read_bytes())
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    lib = str(tmp_path / "lib")
    out = ok("library", "add", lib, str(photos), "--weights", tiny_weights, "--no-detect", "--min-faces", "2")
    assert "added 20 photos (0 already there) with 20 faces" in out and "broken.jpg" in out
    again = ok("library", "add", lib, str(photos))
    assert "added 0 photos (20 already there)" in again
    people = json.loads(ok("library", "people", lib, "--json"))
    waiting = int(out.rsplit(",", 1)[1].split()[0])
    assert sum(p["faces"] for p in people) + waiting == 20
    from faceprint.people import open_library

    library = open_library(lib)
    try:
        assert library.config.min_faces == 2  # kept with the new library
        faces = [r[0] for r in library.db.execute("SELECT face_id FROM face_people ORDER BY face_id LIMIT 2")]
    finally:
        library.close()
    ok("library", "split", lib, *map(str, faces), "--name", "Ada")
    named = [p for p in json.loads(ok("library", "people", lib, "--json")) if p["name"] == "Ada"]
    assert len(named) == 1 and named[0]["faces"] == 2
    assert "Ada" in ok("library", "faces", lib, str(named[0]["id"]))
    assert "similarity" in ok("library", "suggest", lib, str(named[0]["id"]))
    assert "1 faces taken" in ok("library", "reject", lib, str(faces[0]))
    ok("library", "hide", lib, str(named[0]["id"]))
    assert all(p["name"] != "Ada" for p in json.loads(ok("library", "people", lib, "--json")))


def test_library_errors_are_one_line(tmp_path: Path, tiny_faces: Path, tiny_weights: str) -> None:
    lib = tmp_path / "lib"
    env = {**os.environ}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "faceprint", "library", *args], capture_output=True, text=True,
                              timeout=300, env=env)

    missing = cli("people", str(lib))
    assert missing.returncode == 2 and "not a library yet" in missing.stderr and "Traceback" not in missing.stderr
    assert cli("add", str(lib), str(tiny_faces / sorted(os.listdir(tiny_faces))[0]), "--weights", tiny_weights,
               "--no-detect").returncode == 0  # one identity folder: 6 photos
    for args, text in ((("merge", str(lib), "1", "99"), "no person #"), (("calibrate", str(lib)), "two named people"),
                       (("move", str(lib), "12345", "--to", "1"), "no face #12345")):
        res = cli(*args)
        assert res.returncode == 2 and text in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)
