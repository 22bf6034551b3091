"""timm citizenship of the seven ViT variants, and pretrained loading through timm's real path."""

import os
import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

import zoo  # noqa: F401  (registers the variants)
from zoo.hub.registry import load_registry

GAUSS = ["vit_gauss_ti16", "vit_gauss_s16", "vit_gauss_m16", "vit_gauss_b16"]
PRELN = ["vit_preln_ti16", "vit_preln_s16", "vit_preln_b16"]
VARIANTS = GAUSS + PRELN
WIDTH = {"ti16": 192, "s16": 384, "m16": 512, "b16": 768}


def width_of(name):
    return WIDTH[name.rsplit("_", 1)[1]]


@pytest.mark.parametrize("name", VARIANTS)
def test_shape_matches_the_base_architecture(name):
    model = timm.create_model(name, img_size=64)
    assert model.embed_dim == width_of(name)
    assert len(model.blocks) == 12
    base = load_registry().variant(name).base_architecture
    if name != "vit_gauss_ti16":  # the only one without a timm base of the same width
        base_model = timm.create_model(base, img_size=64)
        assert base_model.embed_dim == model.embed_dim
        assert base_model.blocks[0].attn.num_heads == model.blocks[0].attn.num_heads


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_backward_with_num_classes_and_in_chans(name):
    model = timm.create_model(name, img_size=64, num_classes=10, in_chans=1)
    out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 10)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


@pytest.mark.parametrize("name", VARIANTS)
def test_features_only_and_forward_intermediates(name):
    model = timm.create_model(name, img_size=64, features_only=True, out_indices=(1, 3))
    features = model(torch.randn(1, 3, 64, 64))
    assert [f.shape for f in features] == [(1, width_of(name), 4, 4)] * 2
    assert model.feature_info.channels() == [width_of(name)] * 2

    model = timm.create_model(name, img_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    final, intermediates = model.forward_intermediates(x, indices=2)
    assert [t.shape for t in intermediates] == [(1, width_of(name), 4, 4)] * 2
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(final), model(x))


@pytest.mark.parametrize("name", VARIANTS)
def test_dynamic_sizes_and_set_input_size(name):
    model = timm.create_model(name, dynamic_img_size=True).eval()
    with torch.no_grad():
        for size in (160, 224, 256):
            assert model(torch.randn(1, 3, size, size)).shape == (1, 1000)
        assert model(torch.randn(1, 3, 160, 256)).shape == (1, 1000)
    fixed = timm.create_model(name, img_size=64)
    fixed.set_input_size(img_size=(96, 96))
    assert fixed(torch.randn(1, 3, 96, 96)).shape == (1, 1000)


@pytest.mark.parametrize("name", VARIANTS)
def test_reset_classifier(name):
    model = timm.create_model(name, img_size=64)
    model.reset_classifier(5)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, width_of(name))


@pytest.mark.parametrize("name", VARIANTS)
def test_safetensors_state_dict_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = timm.create_model(name, img_size=64).eval()
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), path)
    torch.manual_seed(1)
    restored = timm.create_model(name, img_size=64).eval()
    restored.load_state_dict(load_file(path), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))


@pytest.mark.parametrize("name", ["vit_gauss_ti16", "vit_preln_ti16"])
def test_torchscript(name):
    model = timm.create_model(name, img_size=64).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))


def test_pretrained_tags_come_from_the_registry():
    registry = load_registry()
    for name in VARIANTS:
        expected = sorted(f"{name}.{w.tag}" for w in registry.variant(name).weights)
        assert sorted(timm.list_pretrained(f"{name}.*")) == expected
        for tag in expected:
            cfg = timm.models.get_pretrained_cfg(tag)
            source = next(w for w in registry.variant(name).weights if tag.endswith(w.tag))
            assert cfg.hf_hub_id == source.source
            assert cfg.hf_hub_filename == "model.safetensors"
            assert cfg.paper_ids
    assert timm.list_pretrained("vit_gauss_ti16*") == []


def test_pretrained_without_a_source_is_a_clear_error():
    with pytest.raises(ValueError, match=r"vit_gauss_ti16 has no pretrained weights"):
        timm.create_model("vit_gauss_ti16", pretrained=True)


@pytest.mark.parametrize(
    ("tag", "base"),
    [
        ("vit_gauss_s16.sw_in1k", "vit_relpos_small_patch16_224"),
        ("vit_preln_ti16.augreg_in21k_ft_in1k", "vit_tiny_patch16_224"),
    ],
)
def test_pretrained_loads_through_timm_from_a_local_hub_cache(tag, base, hub_cache, tmp_path):
    """timm.create_model(pretrained=True) -> hf_hub_download (offline) -> our filter -> model."""
    torch.manual_seed(0)
    checkpoint = tmp_path / "model.safetensors"
    save_file(timm.create_model(base).state_dict(), checkpoint)
    source = timm.models.get_pretrained_cfg(tag).hf_hub_id
    hub_cache.add(source, {"model.safetensors": checkpoint})

    report = hub_cache.load_pretrained(tag, checkpoint)
    assert report["same"], "a base weight did not load unchanged"
    assert report["finite"]
    assert len(report["init_warnings"]) == 1
    assert source in report["init_warnings"][0]
    if tag.startswith("vit_gauss"):
        assert report["dropped"] == []
        assert len(report["new"]) == 24  # A and sigma of 12 layers
        assert all(v == [2.0] or v == [5.0] for v in report["new_values"].values())
    else:
        assert report["dropped"] == ["patch_embed.proj.bias"]
        assert report["new"] == ["patch_embed.norm.bias", "patch_embed.norm.weight"]
        assert report["new_values"]["patch_embed.norm.weight"] == [1.0, 1.0]
        assert report["new_values"]["patch_embed.norm.bias"] == [0.0, 0.0]


def test_pretrained_fails_offline_without_the_checkpoint(hub_cache):
    result = subprocess.run(
        [sys.executable, "-c", "import timm, zoo; timm.create_model('vit_gauss_s16', True)"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **hub_cache.env},
    )
    assert result.returncode != 0
    assert "vit_relpos_small_patch16_224.sw_in1k" in result.stderr
