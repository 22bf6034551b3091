"""GaussianAttentionBias against an independent, offset-by-offset construction."""

import math

import pytest
import torch
from timm.layers import PatchEmbed

from zoo.layers import GaussianAttentionBias


def reference_bias(amplitude, sigma, height, width, num_prefix_tokens):
    """The paper's definition, one (query, key) pair at a time, in float64.

    Tests use values exact in float32 (1.75, 2.25), so the layer's float32 init loses nothing.
    """
    n = num_prefix_tokens + height * width
    bias = torch.zeros(n, n, dtype=torch.float64)
    for query in range(height * width):
        qy, qx = divmod(query, width)
        for key in range(height * width):
            ky, kx = divmod(key, width)
            offset2 = (qx - kx) ** 2 + (qy - ky) ** 2
            bias[num_prefix_tokens + query, num_prefix_tokens + key] = amplitude**2 * math.exp(
                -offset2 / (2 * sigma**2)
            )
    return bias


@pytest.mark.parametrize("grid", [(14, 14), (7, 10), (1, 1)])
@pytest.mark.parametrize("num_prefix_tokens", [0, 1])
def test_bias_matches_offset_construction(grid, num_prefix_tokens):
    layer = GaussianAttentionBias(num_prefix_tokens, init_amplitude=1.75, init_sigma=2.25).double()
    bias = layer(grid)
    expected = reference_bias(1.75, 2.25, *grid, num_prefix_tokens)
    assert bias.shape == expected.shape
    torch.testing.assert_close(bias, expected, rtol=1e-12, atol=1e-12)

    # prefix rows and columns are exactly zero
    assert not bias[:num_prefix_tokens].any()
    assert not bias[:, :num_prefix_tokens].any()
    # every query row peaks at its own patch, with value A^2
    patches = bias[num_prefix_tokens:, num_prefix_tokens:]
    assert torch.equal(patches.argmax(dim=1), torch.arange(grid[0] * grid[1]))
    torch.testing.assert_close(
        patches.diagonal(), torch.full((grid[0] * grid[1],), 1.75**2, dtype=torch.float64)
    )


def test_default_init_is_the_papers():
    layer = GaussianAttentionBias()
    assert layer.amplitude.item() == 2.0
    assert layer.sigma.item() == 5.0
    assert layer((3, 3))[0, 0].item() == pytest.approx(4.0)


def test_token_order_is_timms_row_major_patch_order():
    """The bias indexes tokens as y * W + x: check that is how timm's PatchEmbed flattens."""
    embed = PatchEmbed(img_size=(7 * 4, 10 * 4), patch_size=4, in_chans=1, embed_dim=1)
    with torch.no_grad():
        embed.proj.weight.fill_(1.0)
        embed.proj.bias.zero_()
    image = torch.zeros(1, 1, 28, 40)
    image[0, 0, 1 * 4, 3 * 4] = 1.0  # patch row 1, column 3
    tokens = embed(image)[0, :, 0]
    assert tokens.nonzero().flatten().tolist() == [1 * 10 + 3]


def test_gradients_reach_amplitude_and_sigma():
    layer = GaussianAttentionBias(1)
    layer((5, 4)).sum().backward()
    for param in (layer.amplitude, layer.sigma):
        assert param.grad is not None
        assert torch.isfinite(param.grad)
        assert param.grad != 0


def test_collapsed_sigma_gives_no_nan():
    layer = GaussianAttentionBias()
    with torch.no_grad():
        layer.sigma.zero_()
    bias = layer((3, 3))
    assert torch.isfinite(bias).all()
    torch.testing.assert_close(bias, 4.0 * torch.eye(9))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"num_prefix_tokens": -1}, "num_prefix_tokens"),
        ({"init_sigma": 0.0}, "init_sigma"),
        ({"init_sigma": float("nan")}, "init_sigma"),
        ({"init_amplitude": float("inf")}, "init_amplitude"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        GaussianAttentionBias(**kwargs)
