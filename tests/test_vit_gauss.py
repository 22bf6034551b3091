"""The GAB ViTs: bias in the attention, inference cache that is never stale, optimizer groups."""

import copy

import pytest
import timm
import torch
from timm.optim import create_optimizer_v2

import zoo  # noqa: F401  (registers the variants)
from zoo.layers import GaussianAttentionBias
from zoo.models.vit_gauss import GaussRelPosAttention

SMALL = dict(img_size=64)  # a 4x4 token grid keeps these tests fast


def tiny_gauss(**kwargs):
    torch.manual_seed(0)
    return timm.create_model("vit_gauss_ti16", **{**SMALL, **kwargs})


def uncached(model, x):
    """The same computation on a copy whose caches are empty: every bias computed afresh."""
    fresh = copy.deepcopy(model)
    fresh.clear_attn_bias_cache()
    with torch.no_grad():
        return fresh(x)


def cached(model, x):
    with torch.no_grad():
        return model(x)


def count_bias_computations(model, monkeypatch):
    calls = []
    original = GaussRelPosAttention.compute_attn_bias

    def counting(self, grid_size):
        calls.append(tuple(grid_size))
        return original(self, grid_size)

    monkeypatch.setattr(GaussRelPosAttention, "compute_attn_bias", counting)
    return calls


def test_every_block_adds_a_gaussian_bias_on_top_of_relpos():
    model = tiny_gauss().eval()  # RelPosMlp has dropout in training
    for block in model.blocks:
        assert isinstance(block.attn, GaussRelPosAttention)
        assert isinstance(block.attn.gauss_bias, GaussianAttentionBias)
        grid = model.patch_embed.grid_size
        expected = block.attn.rel_pos.get_bias() + block.attn.gauss_bias(grid)
        torch.testing.assert_close(block.attn.compute_attn_bias(grid), expected)
    assert not hasattr(model, "pos_embed") or model.pos_embed is None


def test_the_bias_changes_the_function():
    model = tiny_gauss().eval()
    x = torch.randn(2, 3, 64, 64)
    before = cached(model, x)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.gauss_bias.amplitude.zero_()
    assert not torch.allclose(before, cached(model, x))


def test_cached_equals_uncached_and_is_computed_once(monkeypatch):
    model = tiny_gauss().eval()
    x = torch.randn(2, 3, 64, 64)
    calls = count_bias_computations(model, monkeypatch)
    first = cached(model, x)
    assert len(calls) == len(model.blocks)
    second = cached(model, x)
    assert len(calls) == len(model.blocks), "the second inference call recomputed the bias"
    assert torch.equal(first, second)
    assert torch.equal(first, uncached(model, x))
    # autograd on (e.g. an ERF computation in eval mode): no cache, the same function
    with torch.enable_grad():
        torch.testing.assert_close(model(x), first, rtol=1e-6, atol=1e-6)
    assert len(calls) == 3 * len(model.blocks)  # first call, the fresh copy, autograd on


def test_training_mode_never_uses_the_cache(monkeypatch):
    model = tiny_gauss()
    x = torch.randn(2, 3, 64, 64)
    calls = count_bias_computations(model, monkeypatch)
    with torch.no_grad():
        model.train()(x)
        model(x)
    assert len(calls) == 2 * len(model.blocks)


def test_optimizer_step_invalidates_the_cache():
    model = tiny_gauss()
    x = torch.randn(2, 3, 64, 64)
    stale = cached(model.eval(), x)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()(x).square().mean().backward()
    optimizer.step()
    fresh = cached(model.eval(), x)
    assert not torch.equal(stale, fresh)
    assert torch.equal(fresh, uncached(model, x))


def test_load_state_dict_invalidates_the_cache():
    model = tiny_gauss().eval()
    x = torch.randn(2, 3, 64, 64)
    cached(model, x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in state:
        if name.endswith("gauss_bias.sigma"):
            state[name] = torch.tensor(1.5)
    model.load_state_dict(state)
    assert torch.equal(cached(model, x), uncached(model, x))
    assert model.blocks[0].attn.gauss_bias.sigma.item() == 1.5


def test_input_size_change_invalidates_the_cache():
    model = tiny_gauss(dynamic_img_size=True).eval()
    for size in (64, 96, 64, 48):
        x = torch.randn(1, 3, size, size)
        assert torch.equal(cached(model, x), uncached(model, x)), size


def test_dtype_and_device_change_invalidates_the_cache():
    model = tiny_gauss().eval()
    x = torch.randn(1, 3, 64, 64)
    cached(model, x)
    model = model.double()
    out = cached(model, x.double())
    assert out.dtype == torch.float64
    assert torch.equal(out, uncached(model, x.double()))


def test_param_data_edit_needs_an_explicit_clear():
    """The documented escape hatch: edits through .data bypass version counters."""
    model = tiny_gauss().eval()
    x = torch.randn(1, 3, 64, 64)
    cached(model, x)
    for block in model.blocks:
        block.attn.gauss_bias.amplitude.data.mul_(3.0)
    model.clear_attn_bias_cache()
    assert torch.equal(cached(model, x), uncached(model, x))


def test_gradients_reach_every_amplitude_and_sigma():
    model = tiny_gauss().train()
    model(torch.randn(2, 3, 64, 64)).logsumexp(dim=1).mean().backward()
    for block in model.blocks:
        for param in block.attn.gauss_bias.parameters():
            assert param.grad is not None
            assert torch.isfinite(param.grad)
            assert param.grad != 0


def test_create_optimizer_v2_puts_amplitude_and_sigma_in_a_no_decay_group():
    model = tiny_gauss()
    gauss_names = {n for n in model.no_weight_decay() if ".gauss_bias." in n}
    assert len(gauss_names) == 2 * len(model.blocks)
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05)
    decay_of = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            decay_of[id(param)] = group["weight_decay"]
    params = dict(model.named_parameters())
    assert all(decay_of[id(params[name])] == 0.0 for name in gauss_names)
    assert decay_of[id(params["blocks.0.attn.qkv.weight"])] == 0.05
    assert len(decay_of) == len(params)


def test_shared_rel_pos_is_refused():
    with pytest.raises(ValueError, match="shared_rel_pos"):
        timm.create_model("vit_gauss_ti16", shared_rel_pos=True)


def test_custom_init_reaches_every_layer():
    model = tiny_gauss(gauss_amplitude=1.0, gauss_sigma=3.0)
    for block in model.blocks:
        assert block.attn.gauss_bias.amplitude.item() == 1.0
        assert block.attn.gauss_bias.sigma.item() == 3.0


def test_class_token_gets_zero_bias():
    model = tiny_gauss(class_token=True, global_pool="token")
    bias = model.blocks[0].attn.compute_attn_bias(model.patch_embed.grid_size)
    assert bias.shape[-1] == 1 + 16
    gauss = model.blocks[0].attn.gauss_bias(model.patch_embed.grid_size)
    assert not gauss[0].any()
    assert not gauss[:, 0].any()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
