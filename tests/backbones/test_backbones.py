"""Every registered backbone: forward/backward, unit-norm embeddings; Inception-ResNet-v1 names and shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceprint.backbones import backbone_spec, create_backbone, list_backbones

SMALL_INPUT = {"inception_resnet_v1": 80, "resnet18": 64, "resnet34": 64, "resnet50": 64, "resnet101": 64, "resnet152": 64,
               "small_cnn": 32, "alexnet": 63, "inception_v3": 75, "mobilefacenet": 32,
               "dlib_resnet": 150}

# Published parameter counts without the classifier (torchvision's ImageNet models minus fc / classifier /
# AuxLogits; MobileFaceNet: 0.99M in Chen et al. 2018) and which parameters form that trunk.
PUBLISHED = {
    "alexnet": (2_469_696, lambda n: n.startswith("features")),
    "resnet18": (11_689_512 - 513_000, lambda n: not n.startswith("head")),
    "resnet50": (25_557_032 - 2_049_000, lambda n: not n.startswith("head")),
    "resnet152": (60_192_808 - 2_049_000, lambda n: not n.startswith("head")),
    "inception_v3": (27_161_264 - 2_049_000 - 3_326_696, lambda n: not n.startswith("head")),
    "mobilefacenet": (990_000, lambda n: True),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_published(name: str) -> None:
    published, in_trunk = PUBLISHED[name]
    model = create_backbone(name, embedding_dim=128)
    ours = sum(p.numel() for n, p in model.named_parameters() if in_trunk(n))
    assert abs(ours - published) / published <= 0.02, (ours, published)


@pytest.mark.parametrize("name", list_backbones())
def test_forward_backward_unit_norm(name: str) -> None:
    model = create_backbone(name, embedding_dim=32)
    x = torch.randn(2, 3, SMALL_INPUT[name], SMALL_INPUT[name])
    emb = model(x)
    assert emb.shape == (2, 32)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    emb.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    feats = model.forward_features(x)
    assert feats.shape == (2, model.feature_dim)


@pytest.mark.parametrize("dim", [64, 128, 512])
def test_any_embedding_dimension(dim: int) -> None:
    assert create_backbone("small_cnn", embedding_dim=dim)(torch.randn(2, 3, 32, 32)).shape == (2, dim)


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        create_backbone("vgg")
    with pytest.raises(ValueError, match="positive"):
        create_backbone("small_cnn", embedding_dim=0)
    assert backbone_spec("inception_resnet_v1").input_size == 160


def test_rejects_wrong_input_shape() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        create_backbone("small_cnn")(torch.randn(2, 1, 32, 32))


def _reference_rows(shared: Path) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (shared / "reference" / "inception_resnet_v1_state_dict.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def test_inception_resnet_v1_matches_facenet_pytorch_state_dict(shared_data: Path) -> None:
    model = create_backbone("inception_resnet_v1", embedding_dim=512)
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    ref = _reference_rows(shared_data)
    assert len(ref) == 714
    assert ours == ref
    assert sum(p.numel() for p in model.parameters()) == 23_482_624


def test_inception_resnet_v1_loads_a_facenet_pytorch_style_state_dict_strictly() -> None:
    src = create_backbone("inception_resnet_v1", embedding_dim=512, num_classes=10)
    g = torch.Generator().manual_seed(0)
    state = {k: v * (1 + 0.05 * torch.randn(v.shape, generator=g)) if v.is_floating_point() else v
             for k, v in src.state_dict().items()}
    dst = create_backbone("inception_resnet_v1", embedding_dim=512, num_classes=10)
    dst.load_state_dict(state, strict=True)
    plain = create_backbone("inception_resnet_v1", embedding_dim=512)
    plain.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")}, strict=True)
    x = torch.randn(1, 3, 160, 160)
    assert torch.allclose(dst.eval()(x), plain.eval()(x), atol=1e-6)
