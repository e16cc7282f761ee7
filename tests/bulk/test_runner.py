"""The bulk runner: pipelined and multi-process outputs equal the one-process reference; kills resume cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.align import MTCNN
from faceprint.align.detect import Detections
from faceprint.align.detect import choose_face
from faceprint.bulk import AlignJob, EmbedJob, list_inputs, plan_shards, run_job
from faceprint.bulk.shards import state_dir
from faceprint.data.images import load_rgb
from tests.search.conftest import tiny_weights  # noqa: F401 - a fixture

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def lfw_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 LFW photos of 8 people, a corrupt file and a text file named as an image."""
    people = sorted((SHARED / "lfw" / "images").iterdir())[:40] if (SHARED / "lfw").is_dir() else []
    if not people:
        pytest.skip("needs ../shared/data/lfw")
    root = tmp_path_factory.mktemp("lfw_tree")
    n = 0
    for person in people:
        for photo in sorted(person.glob("*.jpg"))[:3]:
            (root / person.name).mkdir(exist_ok=True)
            shutil.copy(photo, root / person.name / photo.name)
            n += 1
        if n >= 24:
            break
    (root / "broken").mkdir()
    (root / "broken" / "cut.jpg").write_bytes((SHARED / "lfw" / "images").joinpath(
        people[0].name, sorted(os.listdir(people[0]))[0]).read_bytes()[:400])
    (root / "broken" / "notes.jpg").write_text("not an image")
    return root


def reference_crops(src: Path) -> dict[str, np.ndarray]:
    """The one-process reference: each image alone, decode → detect → largest face → 160 px margin crop."""
    mtcnn, out = MTCNN(), {}
    for path in sorted(src.rglob("*.jpg")):
        try:
            img = load_rgb(path)
        except Exception:  # noqa: BLE001 - the broken files
            continue
        det = mtcnn.detect(img)[0]
        k = choose_face(det, img.size, "largest")
        if k is not None:
            one = Detections(det.boxes[k : k + 1], det.probs[k : k + 1], det.landmarks[k : k + 1])
            out[path.relative_to(src).with_suffix(".png").as_posix()] = np.asarray(mtcnn.crop(img, one, "margin", 160, 32)[0])
    return out


def written(dst: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(dst).as_posix(): np.asarray(Image.open(p)) for p in sorted(dst.rglob("*.png"))}


@pytest.fixture(scope="module")
def reference(lfw_tree: Path) -> dict[str, np.ndarray]:
    return reference_crops(lfw_tree)


def test_pipelined_local_engine_equals_the_one_process_reference(lfw_tree: Path, reference: dict, tmp_path: Path) -> None:
    report = run_job(AlignJob(str(lfw_tree), str(tmp_path / "out")), shard_size=7)
    out = written(tmp_path / "out")
    assert len(reference) >= 20 and out.keys() == reference.keys()
    for key, crop in reference.items():
        assert np.abs(out[key].astype(int) - crop.astype(int)).max() == 0, key
    assert sorted(p["path"] for p in report.problems if p["issue"] == "unreadable") == [
        str(lfw_tree / "broken" / "cut.jpg"), str(lfw_tree / "broken" / "notes.jpg")]
    assert report.shards == 4 and report.shards_run == 4 and report.written == len(reference)
    again = run_job(AlignJob(str(lfw_tree), str(tmp_path / "out")), shard_size=7)
    assert again.shards_run == 0 and again.written == 0 and len(again.problems) == len(report.problems)


def test_two_worker_processes_write_the_same_crops(lfw_tree: Path, reference: dict, tmp_path: Path) -> None:
    report = run_job(AlignJob(str(lfw_tree), str(tmp_path / "out")), workers=2, shard_size=7)
    out = written(tmp_path / "out")
    assert out.keys() == reference.keys() and report.shards_run == 4
    pids = {r["pid"] for r in report.records}
    assert os.getpid() not in pids and len(pids) == 2  # the shards really ran in two worker processes
    assert all(np.array_equal(out[k], v) for k, v in reference.items())


@pytest.mark.parametrize("fault", ["bulk.shard@2", "bulk.write@10"])
def test_a_killed_job_resumes_with_nothing_missing_doubled_or_partial(fault: str, lfw_tree: Path, reference: dict,
                                                                      tmp_path: Path) -> None:
    dst = tmp_path / "out"
    cmd = [sys.executable, "-m", "faceprint", "align", str(lfw_tree), str(dst), "--shard-size", "7"]
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "FACEPRINT_FAULT": fault})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    job = AlignJob(str(lfw_tree.resolve()), str(dst.resolve()))
    records = list(state_dir(job).glob("shard-*.json"))
    assert len(records) == 1  # killed in the second shard: the first is recorded, the second is not
    before = set(written(dst))
    assert 0 < len(before) < len(reference)
    if fault.startswith("bulk.write"):  # killed with a crop half-way to its place
        assert list(dst.rglob(".*.tmp"))
    else:  # killed after the second shard's crops were written, before its record
        assert len(before) > json.loads(records[0].read_text())["written"]
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    out = written(dst)
    assert out.keys() == reference.keys()  # nothing missing, nothing extra
    assert all(np.array_equal(out[k], v) for k, v in reference.items())  # nothing partial
    assert not [p for p in dst.rglob("*") if p.name.endswith(".tmp")]
    assert len(list(state_dir(job).glob("shard-*.json"))) == 4


def test_another_recipe_redoes_every_crop_and_the_same_recipe_keeps_them(lfw_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_job(AlignJob(str(lfw_tree), str(out), image_size=64), shard_size=7)
    assert first.written > 10 and {Image.open(p).size for p in out.rglob("*.png")} == {(64, 64)}
    again = run_job(AlignJob(str(lfw_tree), str(out), image_size=48), shard_size=7)
    assert again.shards_run == 4 and again.written == first.written  # every 64 px crop made again at 48 px
    assert sum(r["skipped_existing"] for r in again.records) == 0
    assert {Image.open(p).size for p in out.rglob("*.png")} == {(48, 48)}  # no crop of the old recipe is left
    shutil.rmtree(out / ".faceprint-shards")  # the shards run again: whole crops of this recipe are kept
    third = run_job(AlignJob(str(lfw_tree), str(out), image_size=48), shard_size=7)
    assert third.written == 0 and sum(r["skipped_existing"] for r in third.records) == first.written
    margin = run_job(AlignJob(str(lfw_tree), str(out), image_size=48, margin=8.0), shard_size=7)
    assert margin.written == first.written  # a margin alone is another recipe too
    several = {Path(p["path"]).relative_to(lfw_tree).with_suffix(".png") for p in
               run_job(AlignJob(str(lfw_tree), str(tmp_path / "skip"), policy="skip"), shard_size=7).problems
               if p["issue"] == "several_faces"}
    assert several and all((out / rel).is_file() for rel in several)  # crops of several-face photos, made by "largest"
    skip = run_job(AlignJob(str(lfw_tree), str(out), image_size=48, margin=8.0, policy="skip"), shard_size=7)
    assert skip.written == first.written - len(several)
    assert not any((out / rel).exists() for rel in several)  # "skip" makes none: the old recipe's crops are gone


def test_the_embed_job_equals_the_pipeline(lfw_tree: Path, tmp_path: Path, tiny_weights: str) -> None:
    from faceprint.models import Embedder, face_embedder

    prefix = tmp_path / "emb"
    report = run_job(EmbedJob(str(lfw_tree), str(prefix), {"weights": tiny_weights}, align="mtcnn", flip=True),
                     shard_size=5)
    vectors = np.load(f"{prefix}.npy")
    paths = [line.split(",", 1)[1] for line in Path(f"{prefix}.csv").read_text().splitlines()[1:]]
    faces = face_embedder(Embedder.from_pretrained(tiny_weights), detect=True)
    want, ok, failed = faces.embed_paths([lfw_tree / rel for rel in list_inputs(lfw_tree)], batch_size=5, flip=True)
    assert paths == [str(p) for p in ok] and len(failed) == 2 and report.shards == 6
    assert sorted(p["path"] for p in report.problems if p["issue"] == "unreadable") == sorted(str(p) for p, _ in failed)
    other = run_job(EmbedJob(str(lfw_tree), str(prefix), {"weights": tiny_weights}, align="mtcnn", flip=False),
                    shard_size=5)  # another recipe, same prefix: its own shard arrays
    assert other.shards_run == 6 and np.load(f"{prefix}.npy").shape[1] == want.shape[1] // 2
    again = run_job(EmbedJob(str(lfw_tree), str(prefix), {"weights": tiny_weights}, align="mtcnn", flip=True),
                    shard_size=5)
    assert again.shards_run == 0  # resumed from its own records and arrays, not the other recipe's
    np.testing.assert_allclose(np.load(f"{prefix}.npy"), want, atol=1e-5)
    np.testing.assert_allclose(vectors, want, atol=1e-5)


def test_shards_are_stable_and_change_only_where_the_inputs_do(tmp_path: Path) -> None:
    from faceprint.bulk.shards import stable_shards

    files = [f"p{i:03d}.jpg" for i in range(10)]
    a = stable_shards(tmp_path, files, 4)
    assert [len(s.files) for s in a] == [4, 4, 2] and [s.name for s in a] == [s.name for s in plan_shards(files, 4)]
    b = stable_shards(tmp_path, ["a000.jpg", *files], 4)  # a photo that sorts first: earlier shards stay as they were
    assert [s.name for s in b[:3]] == [s.name for s in a] and b[3].files == ("a000.jpg",)
    c = stable_shards(tmp_path, [f for f in ["a000.jpg", *files] if f != "p005.jpg"], 4)  # one removed
    assert [s.name for s in c] != [s.name for s in b] and c[1].files == ("p004.jpg", "p006.jpg", "p007.jpg")
    assert [s.name for s in (c[0], c[2], c[3])] == [b[0].name, b[2].name, b[3].name]  # only its shard changed
    d = stable_shards(tmp_path, [f for f in ["a000.jpg", *files] if f != "p005.jpg"] + ["z1.jpg", "z2.jpg"], 1)
    assert [s.files for s in d[4:]] == [("z1.jpg",), ("z2.jpg",)]  # new files cut at this run's size
    e = stable_shards(tmp_path, files[:4], 4)  # the later shards emptied ...
    f = stable_shards(tmp_path, [*files[:4], "q.jpg"], 4)  # ... keep their indices: a new file gets a new one
    assert len(e) == 1 and f[1].index == 6
    with pytest.raises(ValueError):
        stable_shards(tmp_path, files, 0)


def test_the_ray_engine_writes_what_the_local_engine_writes(lfw_tree: Path, reference: dict, tmp_path: Path) -> None:
    """A real local Ray cluster, listening on 127.0.0.1 only; Ray Data over the same shards, actors holding MTCNN."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from faceprint.bulk.ray_engine import loopback_only

    loopback_only()
    ray.init(num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        report = run_job(AlignJob(str(lfw_tree), str(tmp_path / "out")), engine="ray", workers=2, shard_size=7)
        from tests.netstat import listening

        sockets = listening()
    finally:
        ray.shutdown()
    ray_sockets = [(addr, port) for addr, port, name in sockets if name.startswith(("raylet", "gcs_server"))]
    assert ray_sockets and all(addr == "127.0.0.1" for addr, _ in ray_sockets), ray_sockets  # seen, and loopback only
    out = written(tmp_path / "out")
    assert out.keys() == reference.keys() and report.shards_run == 4
    assert all(np.array_equal(out[k], v) for k, v in reference.items())
    assert sorted(p["path"] for p in report.problems if p["issue"] == "unreadable") == [
        str(lfw_tree / "broken" / "cut.jpg"), str(lfw_tree / "broken" / "notes.jpg")]


def test_a_crop_cut_short_by_a_crash_is_redone(lfw_tree: Path, reference: dict, tmp_path: Path) -> None:
    """A crop renamed into place but never synced can come back empty after a power loss: a shard without a record
    does not keep it."""
    job = AlignJob(str(lfw_tree), str(tmp_path / "out"))
    run_job(job, shard_size=7)
    first, second = sorted(reference)[:2]
    (tmp_path / "out" / first).write_bytes(b"")
    (tmp_path / "out" / second).write_bytes((tmp_path / "out" / second).read_bytes()[:100])
    for record in state_dir(AlignJob(str(lfw_tree.resolve()), str((tmp_path / "out").resolve()))).glob("shard-*.json"):
        record.unlink()  # as if the crash came before the shards were recorded
    run_job(job, shard_size=7)
    out = written(tmp_path / "out")
    assert np.array_equal(out[first], reference[first]) and np.array_equal(out[second], reference[second])


def test_faceprint_embed_on_a_folder_runs_on_the_runner(lfw_tree: Path, tmp_path: Path, tiny_weights: str) -> None:
    """`faceprint embed DIR --workers 2` writes what the one-process embed job writes, and a rerun resumes."""
    from typer.testing import CliRunner

    from faceprint.cli.main import app

    run_job(EmbedJob(str(lfw_tree), str(tmp_path / "ref"), {"weights": tiny_weights, "backend": "torch"},
                     align="mtcnn", batch_size=64), shard_size=5)
    args = ["embed", str(lfw_tree), "--weights", tiny_weights, "--align", "mtcnn", "--out", str(tmp_path / "e"),
            "--shard-size", "5", "--workers", "2"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "6 shards run" in said and "cut.jpg" in said  # the bad file is named
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), np.load(tmp_path / "ref.npy"), atol=1e-5)
    assert (tmp_path / "e.csv").read_text() == (tmp_path / "ref.csv").read_text()
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0 and "0 shards run, 6 already done" in " ".join(again.output.split())


def test_two_inputs_with_one_output_are_listed_not_clobbered(lfw_tree: Path, tmp_path: Path) -> None:
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    photo = sorted(lfw_tree.rglob("*.jpg"))[0]
    (src / "x.jpg").write_bytes(photo.read_bytes())
    Image.open(photo).save(src / "x.png")  # the same crop name: x.png
    report = run_job(AlignJob(str(tmp_path / "src"), str(tmp_path / "out")), shard_size=1)
    assert report.shards == 1 and report.written == 1
    assert [p["issue"] for p in report.problems] == ["same_output"] and report.problems[0]["path"].endswith("x.png")



def test_photos_added_anywhere_run_only_a_new_shard(lfw_tree: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(lfw_tree, src)
    first = run_job(AlignJob(str(src), str(tmp_path / "out")), shard_size=7)
    donor = next(p for p in sorted(lfw_tree.rglob("*.jpg"))  # a photo with a crop: its copy gets one too
                 if (tmp_path / "out" / p.relative_to(lfw_tree)).with_suffix(".png").is_file())
    (src / "AAA_first").mkdir()
    shutil.copy(donor, src / "AAA_first" / "new.jpg")  # sorts before every other file
    again = run_job(AlignJob(str(src), str(tmp_path / "out")), shard_size=7)
    assert again.shards_run == 1 and again.shards == first.shards + 1 and again.written == 1


def test_the_ray_engine_without_ray_is_one_line(lfw_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from faceprint.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if faceprint[ray] were not installed
    with pytest.raises(SystemExit) as ended:
        main(["align", str(lfw_tree), str(tmp_path / "out"), "--engine", "ray"])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and 'pip install "faceprint[ray]"' in err and "Traceback" not in err
