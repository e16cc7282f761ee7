"""The batched first stage (mosaic of pyramid levels) and the batched crops against level-by-level oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceprint.align import batched_nms, load_mtcnn_nets, nms
from faceprint.align.detect import _Integral
from faceprint.align.pyramid import area_levels, pack_tiles, pyramid_scales, stage_one


@pytest.fixture(scope="module")
def pnet() -> torch.nn.Module:
    return load_mtcnn_nets()[0]


def _level_by_level(images: list[torch.Tensor], pnet: torch.nn.Module, min_face: float, factor: float,
                    thr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """MTCNN's stage one as facenet-pytorch writes it: each image, each scale, resize, P-Net, NMS 0.5."""
    boxes, inds = [], []
    for i, img in enumerate(images):
        h, w = img.shape[1:]
        for s in pyramid_scales(h, w, min_face, factor):
            data = (F.interpolate(img[None], size=(int(h * s + 1), int(w * s + 1)), mode="area") - 127.5) * 0.0078125
            reg, probs = pnet(data)
            score = probs[0, 1]
            iy, ix = (score >= thr).nonzero().unbind(1)
            bb = torch.stack([ix, iy], 1).float()
            cand = torch.cat([((2 * bb + 1) / s).floor(), ((2 * bb + 12) / s).floor(), score[iy, ix, None], reg[0][:, iy, ix].T], 1)
            keep = nms(cand[:, :4], cand[:, 4], 0.5)
            boxes.append(cand[keep])
            inds.append(torch.full((len(keep),), i))
    return torch.cat(boxes), torch.cat(inds)


def _images(seed: int, sizes: list[tuple[int, int]], integer: bool = True) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for h, w in sizes:
        # smooth blobs on noise: P-Net fires on some of it at a low threshold
        base = F.interpolate(torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g), size=(h, w), mode="bilinear")[0] * 255
        img = (base * 0.8 + torch.rand(3, h, w, generator=g) * 51)
        out.append(img.floor() if integer else img)
    return out


@pytest.mark.parametrize("max_pixels", [1 << 18, 6000, 1500])
def test_mosaic_equals_level_by_level(pnet: torch.nn.Module, max_pixels: int) -> None:
    # odd and even sides, one image narrower than a canvas shelf, stripes when max_pixels is small
    images = _images(0, [(97, 131), (120, 80), (63, 64), (151, 151), (45, 200)])
    with torch.inference_mode():
        want, want_i = _level_by_level(images, pnet, 20.0, 0.709, 0.3)
        got, got_i = stage_one(images, pnet, 20.0, 0.709, 0.3, max_pixels=max_pixels)
    assert len(want) > 50  # the test exercises real candidates
    assert torch.equal(got_i, want_i)
    assert torch.allclose(got, want, atol=1e-4)


def test_image_too_small_for_any_level_among_others(pnet: torch.nn.Module) -> None:
    """A 1×1 and a 5×9 image in a batch give no candidates and leave the others' candidates as they are."""
    images = _images(3, [(97, 131), (63, 64)])
    tiny = [torch.full((3, 1, 1), 100.0), torch.full((3, 5, 9), 50.0)]
    with torch.inference_mode():
        want, want_i = _level_by_level(images, pnet, 20.0, 0.709, 0.3)
        got, got_i = stage_one([tiny[0], images[0], tiny[1], images[1]], pnet, 20.0, 0.709, 0.3)
    assert len(want) > 10
    assert torch.equal(got_i, torch.tensor([1, 3])[want_i]) and torch.allclose(got, want, atol=1e-4)


def test_mosaic_non_integer_images(pnet: torch.nn.Module) -> None:
    images = _images(1, [(90, 70), (71, 103)], integer=False)
    with torch.inference_mode():
        want, want_i = _level_by_level(images, pnet, 15.0, 0.709, 0.3)
        got, got_i = stage_one(images, pnet, 15.0, 0.709, 0.3, max_pixels=4000)
    assert len(want) > 10 and torch.equal(got_i, want_i) and torch.allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("integer", [True, False])
def test_area_levels_match_area_interpolation(integer: bool) -> None:
    x = torch.rand(2, 3, 77, 131) * 255
    x = x.floor() if integer else x
    sizes = [(47, 80), (33, 57), (12, 13), (77, 131), (5, 100)]
    for got, size in zip(area_levels(x, sizes), sizes):
        want = F.interpolate(x, size=size, mode="area")
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-3, rtol=0)


def test_pack_tiles_cover_every_output_once() -> None:
    sizes = [(540, 1029), (250, 250), (31, 400), (13, 13)]
    tiles, canvases = pack_tiles(sizes, 20.0, 0.709, max_pixels=30000)
    occupied = [np.zeros(shape, bool) for shape in canvases]
    covered: dict[tuple[int, int], list[int]] = {}
    for t in tiles:
        assert t.y % 2 == 0 and t.x % 2 == 0 and (t.rows - 1) // 2 - 4 >= 1
        h, w = canvases[t.canvas]
        assert t.y + t.rows <= h and t.x + t.cols <= w
        assert not occupied[t.canvas][t.y : t.y + t.rows, t.x : t.x + t.cols].any()
        occupied[t.canvas][t.y : t.y + t.rows, t.x : t.x + t.cols] = True
        first = t.row0 // 2
        covered.setdefault((t.image, t.level), []).extend(range(first, first + (t.rows - 1) // 2 - 4))
    for i, (h, w) in enumerate(sizes):
        for k, s in enumerate(pyramid_scales(h, w, 20.0, 0.709)):
            assert sorted(covered[(i, k)]) == list(range((int(h * s + 1) - 1) // 2 - 4)), (i, k)
    assert len(canvases) > 1 and max(h * w for h, w in canvases) <= 30000


def test_integral_crops_match_per_box_resize() -> None:
    images = _images(2, [(60, 90), (41, 33)])
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(40, 2, generator=g) * 100 - 20
    side = torch.rand(40, 1, generator=g) * 50 + 1
    boxes = torch.cat([xy, xy + side, torch.zeros(40, 1)], 1)
    inds = torch.randint(0, 2, (40,), generator=g)
    got, ok = _Integral(images, integer=True).crops(boxes, inds, 24)
    want, want_ok = [], []
    for k, (x, y, ex, ey) in enumerate(boxes[:, :4].trunc().int().tolist()):
        img = images[int(inds[k])]
        x, y, ex, ey = max(x, 1), max(y, 1), min(ex, img.shape[2]), min(ey, img.shape[1])
        if ey > y - 1 and ex > x - 1:
            want.append(F.interpolate(img[None, :, y - 1 : ey, x - 1 : ex], size=(24, 24), mode="area"))
            want_ok.append(k)
    assert ok.tolist() == want_ok and 0 < len(want_ok) < 40  # some boxes fall outside
    assert torch.allclose(got, (torch.cat(want) - 127.5) * 0.0078125, atol=1e-5)


def test_batched_nms_is_nms_per_group_in_group_order() -> None:
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 40, (60, 2))
    boxes = torch.tensor(np.hstack([xy, xy + rng.uniform(5, 20, (60, 2))]))
    scores = torch.tensor(rng.permutation(60).astype(float))
    groups = torch.tensor(rng.integers(0, 4, 60))
    got = batched_nms(boxes, scores, groups, 0.3).tolist()
    want = []
    for g in range(4):
        idx = (groups == g).nonzero().flatten()
        want += idx[nms(boxes[idx], scores[idx], 0.3)].tolist()
    assert got == want
