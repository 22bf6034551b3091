"""PreLayerNorm patch embedding: invariance to input scaling, and the plain ViT's lack of it."""

import pytest
import timm
import torch

import zoo  # noqa: F401  (registers the variants)
from zoo.layers import PreLayerNormPatchEmbed

PRELN_VARIANTS = ["vit_preln_ti16", "vit_preln_s16", "vit_preln_b16"]
SCALES = (0.1, 0.5, 2.0, 10.0)


def max_scaling_error(model, x):
    """max over c of max|f(c x) - f(x)| / max|f(x)|."""
    with torch.no_grad():
        reference = model(x)
        return max(
            ((model(c * x) - reference).abs().max() / reference.abs().max()).item() for c in SCALES
        )


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", PRELN_VARIANTS)
def test_preln_output_is_invariant_to_input_scaling(name, images):
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    assert max_scaling_error(model, images) <= 1e-4


def test_the_same_check_fails_for_the_plain_vit(images):
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224").eval()
    assert max_scaling_error(model, images) > 1e-2


def test_embedding_is_layernorm_of_a_bias_free_projection_before_positions():
    model = timm.create_model("vit_preln_ti16", img_size=64)
    embed = model.patch_embed
    assert isinstance(embed, PreLayerNormPatchEmbed)
    assert embed.proj.bias is None
    assert isinstance(embed.norm, torch.nn.LayerNorm)
    assert isinstance(model.norm_pre, torch.nn.Identity)  # not timm's pre_norm
    x = torch.randn(1, 3, 64, 64)
    tokens = embed.norm(embed.proj(x).flatten(2).transpose(1, 2))
    torch.testing.assert_close(embed(x), tokens)


def test_timms_pre_norm_is_refused():
    with pytest.raises(ValueError, match="pre_norm"):
        timm.create_model("vit_preln_ti16", pre_norm=True)


def test_another_embed_layer_is_refused():
    from timm.layers import PatchEmbed

    with pytest.raises(ValueError, match="embed_layer"):
        timm.create_model("vit_preln_ti16", embed_layer=PatchEmbed)


def test_invariance_holds_with_dynamic_sizes():
    torch.manual_seed(0)
    model = timm.create_model("vit_preln_ti16", dynamic_img_size=True).eval()
    x = torch.randn(1, 3, 160, 256)
    assert max_scaling_error(model, x) <= 1e-4
