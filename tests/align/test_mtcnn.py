"""MTCNN against facenet-pytorch's own detections, NMS against brute force, robustness and alignment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceprint.align import MTCNN, nms, umeyama
from faceprint.data.images import load_rgb


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    return MTCNN()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_matches_facenet_pytorch_reference(shared_data: Path, mtcnn: MTCNN) -> None:
    ref = json.loads((shared_data / "reference" / "mtcnn_facenet_pytorch.json").read_text())["images"]
    names = list(ref)
    images = [load_rgb(shared_data / name) for name in names]
    found = []
    for i in range(0, len(images), 8):
        found += mtcnn.detect(images[i : i + 8])
    for name, det in zip(names, found):
        want = ref[name]
        assert len(det) == len(want["boxes"]), name
        for k in range(len(det)):
            assert _iou(det.boxes[k], np.array(want["boxes"][k])) >= 0.95, name
            assert abs(det.probs[k] - want["probs"][k]) <= 1e-3, name
            assert np.abs(det.landmarks[k] - np.array(want["landmarks"][k])).max() <= 2.0, name


def test_batched_equals_alone(shared_data: Path, mtcnn: MTCNN) -> None:
    group = load_rgb(shared_data / "samples" / "multiface.jpg")
    others = [load_rgb(p) for p in sorted((shared_data / "samples" / "aligned").glob("*/1.png"))[:2]]
    alone = mtcnn.detect(group)[0]
    batched = mtcnn.detect([others[0], group, others[1]])[1]
    assert np.allclose(alone.boxes, batched.boxes, atol=1e-4)
    assert np.allclose(alone.probs, batched.probs, atol=1e-4)
    assert np.allclose(alone.landmarks, batched.landmarks, atol=1e-4)


@pytest.mark.parametrize("case", ["tiny", "blank", "gray", "rgba", "huge"])
def test_odd_inputs_do_not_crash(mtcnn: MTCNN, case: str) -> None:
    img = {
        "tiny": Image.new("RGB", (10, 8), "white"),
        "blank": Image.new("RGB", (200, 150), "black"),
        "gray": Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 90), dtype=np.uint8)),
        "rgba": Image.new("RGBA", (64, 64), (10, 20, 30, 0)),
        "huge": Image.new("RGB", (6000, 4000), (128, 128, 128)),
    }[case]
    det = mtcnn.detect(img)[0]
    assert len(det) == 0 and det.boxes.shape == (0, 4) and det.landmarks.shape == (0, 5, 2)


def _brute_nms(boxes: np.ndarray, scores: np.ndarray, thr: float, mode: str) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            ix = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            iy = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            ai = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            aj = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            o = ix * iy / (min(ai, aj) if mode == "min" else ai + aj - ix * iy)
            if o > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("mode", ["union", "min"])
def test_nms_matches_brute_force(mode: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy = rng.uniform(0, 50, (30, 2))
        wh = rng.uniform(5, 30, (30, 2))
        boxes = np.hstack([xy, xy + wh])
        scores = rng.permutation(30).astype(float)
        got = nms(torch.tensor(boxes), torch.tensor(scores), 0.4, mode).tolist()
        assert got == _brute_nms(boxes, scores, 0.4, mode)


def test_umeyama_recovers_a_similarity() -> None:
    src = np.random.default_rng(1).uniform(0, 100, (5, 2))
    ang, s, t = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    m = umeyama(src, src @ (s * rot).T + t)
    assert np.allclose(m, np.hstack([s * rot, t[:, None]]), atol=1e-9)


def test_similarity_alignment_brings_faces_of_one_person_closer(shared_data: Path, mtcnn: MTCNN) -> None:
    """Crops of the same person agree more (in pixels) after 5-point alignment than as plain box crops."""
    lfw = shared_data / "lfw" / "images"
    person = max((p for p in lfw.iterdir() if p.is_dir()), key=lambda p: len(list(p.glob("*.jpg"))))
    imgs = [load_rgb(p) for p in sorted(person.glob("*.jpg"))[:8]]
    dets = mtcnn.detect(imgs)
    aligned, boxed = [], []
    for img, det in zip(imgs, dets):
        if len(det):
            aligned.append(np.asarray(mtcnn.crop(img, det, "similarity", 112)[0], np.float32))
            boxed.append(np.asarray(mtcnn.crop(img, det, "margin", 112)[0], np.float32))

    def spread(crops: list[np.ndarray]) -> float:  # mean deviation over the inner face (eyes to mouth)
        stack = np.stack(crops)[:, 36:100, 28:84]
        return float(np.abs(stack - stack.mean(0)).mean())

    assert len(aligned) >= 5
    assert spread(aligned) < spread(boxed)


def test_align_folder_resumes_and_reports(shared_data: Path, mtcnn: MTCNN, tmp_path: Path) -> None:
    import shutil

    from faceprint.bulk.align import align_folder

    src = tmp_path / "src"
    for p in sorted((shared_data / "samples" / "aligned").glob("*/1.png"))[:3]:
        (src / p.parent.name).mkdir(parents=True)
        shutil.copy(p, src / p.parent.name / "a.png")
    (src / "nobody").mkdir()
    Image.new("RGB", (120, 120), "gray").save(src / "nobody" / "blank.jpg")
    (src / "nobody" / "broken.jpg").write_bytes(b"\xff\xd8\xff nope")
    shutil.copy(shared_data / "samples" / "multiface.jpg", src / "nobody" / "group.jpg")
    rep = align_folder(src, tmp_path / "dst", mtcnn, image_size=64, margin=8, policy="skip")
    assert rep.written == 3
    issues = {Path(p["path"]).name: p["issue"] for p in rep.problems}
    assert issues == {"blank.jpg": "no_face", "broken.jpg": "unreadable", "group.jpg": "several_faces"}
    outs = sorted((tmp_path / "dst").rglob("*.png"))
    assert len(outs) == 3 and all(Image.open(o).size == (64, 64) for o in outs)
    assert (tmp_path / "dst" / "align_report.csv").read_text().count("\n") == 4
    again = align_folder(src, tmp_path / "dst", mtcnn, image_size=64, margin=8, policy="skip")
    assert again.written == 0 and again.skipped_existing == 3  # the same recipe: every crop kept
    assert json.loads((tmp_path / "dst" / "align_recipe.json").read_text())["policy"] == "skip"
    again = align_folder(src, tmp_path / "dst", mtcnn, image_size=64, margin=8, policy="largest")
    assert again.written == 4 and again.skipped_existing == 0  # another recipe: made again, the group photo too
    assert not list((tmp_path / "dst").rglob("*.tmp"))


def test_align_cli(shared_data: Path, tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from faceprint.cli.main import app

    src = tmp_path / "src" / "someone"
    src.mkdir(parents=True)
    shutil.copy(shared_data / "samples" / "aligned" / "angelina_jolie" / "1.png", src / "1.png")
    result = CliRunner().invoke(app, ["align", str(tmp_path / "src"), str(tmp_path / "dst"), "--image-size", "112",
                                      "--mode", "similarity"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wrote 1 crops" in result.output
    assert Image.open(tmp_path / "dst" / "someone" / "1.png").size == (112, 112)
    # a minimum face larger than the image: nothing to search, reported rather than failed
    result = CliRunner().invoke(app, ["align", str(tmp_path / "src"), str(tmp_path / "big"), "--min-face", "400"],
                                catch_exceptions=False)
    assert result.exit_code == 0 and "wrote 0 crops" in result.output and "1 problems" in result.output, result.output
