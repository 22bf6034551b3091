"""Kernel padding (paper H): exact for convs at every input size; pools change on purpose."""

import copy

import pytest
import timm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import zoo  # noqa: F401  (registers the variants)
from zoo.guidelines import dead_pixel_layers, kernel_pad
from zoo.layers.kernel_pad import EvenKernelConv2d, EvenKernelMaxPool2d
from zoo.models.resnet_kp import checkpoint_filter_fn

SIZES = (224, 225, 160)
RESNET50_LAYERS = {
    "conv1": ("conv", (7, 7)),
    "maxpool": ("max_pool", (3, 3)),
    "layer2.0.conv2": ("conv", (3, 3)),
    "layer2.0.downsample.0": ("conv", (1, 1)),
    "layer3.0.conv2": ("conv", (3, 3)),
    "layer3.0.downsample.0": ("conv", (1, 1)),
    "layer4.0.conv2": ("conv", (3, 3)),
    "layer4.0.downsample.0": ("conv", (1, 1)),
}


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    return timm.create_model("resnet50").eval()


def test_finds_exactly_the_papers_layers_in_resnet50(resnet50):
    found = {name: type(m).__name__ for name, m in dead_pixel_layers(resnet50)}
    assert set(found) == set(RESNET50_LAYERS)
    _, report = kernel_pad(copy.deepcopy(resnet50))
    assert {c.name: (c.kind, c.kernel) for c in report.changes} == RESNET50_LAYERS
    assert all(c.new_kernel == (c.kernel[0] + 1, c.kernel[1] + 1) for c in report.changes)
    assert not report.exact
    assert report.skipped == []
    assert "conv1" in str(report)


def test_each_converted_conv_matches_the_original_at_every_size(resnet50):
    padded, report = kernel_pad(copy.deepcopy(resnet50), pools=False)
    assert report.exact
    inputs = {}
    hooks = [
        padded.get_submodule(c.name).register_forward_pre_hook(
            lambda module, args, name=c.name: inputs.__setitem__(name, args[0])
        )
        for c in report.changes
    ]
    for size in SIZES:
        with torch.no_grad():
            padded(torch.randn(1, 3, size, size))
            for change in report.changes:
                original = resnet50.get_submodule(change.name)
                converted = padded.get_submodule(change.name)
                assert isinstance(converted, EvenKernelConv2d)
                x = inputs[change.name]
                torch.testing.assert_close(converted(x), original(x), rtol=0, atol=1e-6)
    for hook in hooks:
        hook.remove()


@pytest.mark.parametrize("size", SIZES)
def test_resnet50_kp_without_pools_matches_resnet50(resnet50, size):
    model = timm.create_model("resnet50_kp", kernel_pad_pools=False).eval()
    model.load_state_dict(checkpoint_filter_fn(resnet50.state_dict(), model))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), resnet50(x), rtol=1e-5, atol=1e-5)


def test_the_pool_change_is_real(resnet50):
    model = timm.create_model("resnet50_kp").eval()
    assert isinstance(model.maxpool, EvenKernelMaxPool2d)
    model.load_state_dict(checkpoint_filter_fn(resnet50.state_dict(), model))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out, ref = model.forward_features(x), resnet50.forward_features(x)
    assert out.shape == ref.shape
    assert not torch.allclose(out, ref, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(
    kernel=st.sampled_from([1, 3, 5, 7]),
    stride=st.sampled_from([2, 4]),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 2),
    mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    height=st.integers(9, 31),
    width=st.integers(9, 31),
    groups=st.sampled_from([1, 2]),
)
def test_even_kernel_conv_is_exact_for_any_geometry(
    kernel, stride, padding, dilation, mode, height, width, groups
):
    conv = nn.Conv2d(4, 6, kernel, stride, padding, dilation, groups=groups, padding_mode=mode)
    x = torch.randn(2, 4, height, width)
    if (kernel - 1) * dilation + 1 > min(height, width) + 2 * padding:
        return  # the original conv itself refuses this input
    even = EvenKernelConv2d.from_odd(conv)
    with torch.no_grad():
        torch.testing.assert_close(even(x), conv(x), rtol=0, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(kernel=st.sampled_from([3, 5]), height=st.integers(8, 30), ceil_mode=st.booleans())
def test_even_kernel_pool_keeps_the_output_size(kernel, height, ceil_mode):
    pool = nn.MaxPool2d(kernel, 2, kernel // 2, ceil_mode=ceil_mode)
    x = torch.randn(1, 2, height, height + 3)
    assert EvenKernelMaxPool2d.from_odd(pool)(x).shape == pool(x).shape


def test_convs_with_their_own_forward_are_skipped_not_broken():
    from timm.layers import Conv2dSame, StdConv2d

    model = nn.Sequential(StdConv2d(3, 8, 3, stride=2, padding=1), Conv2dSame(8, 8, 3, stride=2))
    x = torch.randn(1, 3, 33, 33)
    before = model(x)
    _, report = kernel_pad(model)
    assert [name for name, _ in report.skipped] == ["0", "1"]
    assert "StdConv2d is not a plain Conv2d" in report.skipped[0][1]
    assert report.changes == []
    assert torch.equal(model(x), before)


def test_pools_argument_is_checked():
    with pytest.raises(ValueError, match="pools must be True or False"):
        kernel_pad(nn.Sequential(), pools="yes")


def test_kernel_pad_is_idempotent(resnet50):
    padded, _ = kernel_pad(copy.deepcopy(resnet50))
    _, again = kernel_pad(padded)
    assert again.changes == []


@pytest.mark.parametrize(
    "name", ["resnet18_kp", "resnet34_kp", "resnet50_kp", "resnet101_kp", "resnext50_32x4d_kp"]
)
def test_variants_are_timm_citizens(name):
    model = timm.create_model(name, num_classes=7, in_chans=1)
    out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 7)
    out.sum().backward()
    assert not dead_pixel_layers(model)
    features = timm.create_model(name, features_only=True, out_indices=(1, 4))
    assert [f.shape[-1] for f in features(torch.randn(1, 3, 64, 64))] == [16, 2]


def test_torchscript():
    model = timm.create_model("resnet18_kp").eval()
    x = torch.randn(1, 3, 65, 65)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


def test_pretrained_conversion_through_timm(hub_cache, timm_checkpoint):
    checkpoint, base_logits = timm_checkpoint("resnet18")
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": checkpoint})

    paper = hub_cache.load_pretrained("resnet18_kp.a1_in1k", checkpoint)
    assert paper["same"]
    assert paper["zero_padded"]
    assert paper["enlarged"] == [
        "conv1.weight",
        "layer2.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer3.0.conv1.weight",
        "layer3.0.downsample.0.weight",
        "layer4.0.conv1.weight",
        "layer4.0.downsample.0.weight",
    ]
    assert paper["new"] == []
    assert paper["dropped"] == []
    assert len(paper["init_warnings"]) == 1  # the max-pool changed: init-only

    exact = hub_cache.load_pretrained("resnet18_kp.a1_in1k", checkpoint, kernel_pad_pools=False)
    assert exact["init_warnings"] == []
    torch.testing.assert_close(torch.tensor(exact["logits"]), base_logits, rtol=1e-5, atol=1e-5)
