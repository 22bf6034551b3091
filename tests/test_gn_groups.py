"""Ideal GroupNorm groups (paper E; the rule is ours, docs/cnn.md)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import timm
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

import zoo  # noqa: F401  (registers the variants)
from zoo.guidelines.gn_groups import (
    DEFAULT_TOLERANCE,
    activation_gain,
    divisors,
    gn_block_gain,
    gn_calibrate,
    ideal_groups,
    set_gn_groups,
)
from zoo.models.resnet_gncal import CALIBRATION, load_gn_groups

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cnn.md"
ACTIVATIONS = {"relu": nn.ReLU, "identity": nn.Identity, "gelu": nn.GELU}


def measured_gain(channels, groups, activation, input_scale, *, size=16, kernel=3, seeds=6):
    """||dL/dx|| / ||dL/dz|| of conv -> GroupNorm(groups) -> activation at init, for inputs
    ReLU(input_scale * N(0, 1)) and Gaussian upstream gradients, pooled over seeds."""
    grad_in = grad_out = 0.0
    for seed in range(seeds):
        torch.manual_seed(seed)
        conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)
        block = nn.Sequential(conv, nn.GroupNorm(groups, channels), ACTIVATIONS[activation]())
        x = torch.relu(input_scale * torch.randn(2, channels, size, size)).requires_grad_()
        z = block(x)
        dz = torch.randn_like(z)
        z.backward(dz)
        grad_in += x.grad.square().sum().item()
        grad_out += dz.square().sum().item()
    return math.sqrt(grad_in / grad_out)


def predicted_gain(channels, groups, activation, input_scale, size=16):
    # ReLU(a * N(0, 1)): E[x^2] = a^2 / 2, and its mean a / sqrt(2 pi) carries 1/pi of that
    return gn_block_gain(
        channels,
        groups,
        (size, size),
        input_mean_square=input_scale**2 / 2,
        input_mean_fraction=1 / math.pi,
        activation=activation,
    )


# (activation, input scale a, documented optimum for C=32 on 16x16; docs/cnn.md)
SCENARIOS = [("relu", 1.0, 1), ("relu", 1.1, 16), ("relu", 1.2, 32), ("identity", 1.5, 8)]


@pytest.mark.parametrize(("activation", "scale", "optimum"), SCENARIOS)
def test_ideal_groups_picks_the_measured_optimum(activation, scale, optimum):
    measured = {g: measured_gain(32, g, activation, scale) for g in divisors(32)}
    closest = min(measured, key=lambda g: abs(math.log(measured[g])))
    chosen = ideal_groups(
        32,
        (16, 16),
        input_mean_square=scale**2 / 2,
        input_mean_fraction=1 / math.pi,
        activation=activation,
    )
    assert closest == chosen == optimum, measured
    # and G matters here: the gains span more than the derivation's tolerance
    assert max(measured.values()) / min(measured.values()) > 1.1


@pytest.mark.parametrize(("activation", "scale"), [(a, s) for a, s, _ in SCENARIOS])
def test_predicted_gain_tracks_the_measured_gain_for_every_group_count(activation, scale):
    for groups in divisors(32):
        measured = measured_gain(32, groups, activation, scale)
        predicted = predicted_gain(32, groups, activation, scale)
        assert predicted == pytest.approx(measured, rel=0.03), groups


def test_gain_grows_from_layer_norm_to_instance_norm_as_derived():
    rho = 0.6
    gains = [
        gn_block_gain(64, g, 56 * 56, input_mean_square=0.5, input_mean_fraction=rho)
        for g in divisors(64)
    ]
    assert gains == sorted(gains)
    # G = C: each group is one channel and sees no offsets, sigma^2 = (1 - rho) v
    assert gains[-1] == pytest.approx(math.sqrt(1 / (1 - rho) * (1 - 2 / (56 * 56))), rel=1e-6)
    # white-noise input has no offsets: G only enters through the 2/m projection
    flat = [gn_block_gain(64, g, 56 * 56, input_mean_fraction=0.0) for g in divisors(64)]
    assert max(flat) / min(flat) < 1.001


def test_activation_gain():
    assert activation_gain("relu") == pytest.approx(0.5, abs=1e-12)
    assert activation_gain("identity") == pytest.approx(1.0, abs=1e-12)
    assert activation_gain(nn.ReLU(inplace=True)) == pytest.approx(0.5, abs=1e-12)
    # SiLU'(y)^2 integrated against N(0, 1) by Monte Carlo, independently of the quadrature
    y = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    slope = torch.sigmoid(y) * (1 + y * (1 - torch.sigmoid(y)))
    assert activation_gain("silu") == pytest.approx(slope.square().mean().item(), rel=2e-3)


@settings(max_examples=60, deadline=None)
@given(
    channels=st.integers(1, 512),
    side=st.integers(1, 64),
    mean_square=st.floats(0.05, 20),
    rho=st.floats(0, 0.95),
    activation=st.sampled_from(["relu", "gelu", "identity"]),
)
def test_every_choice_divides_the_channels(channels, side, mean_square, rho, activation):
    assume(channels * side * side > 2)
    kwargs = dict(input_mean_square=mean_square, input_mean_fraction=rho, activation=activation)
    chosen = ideal_groups(channels, (side, side), **kwargs)
    assert channels % chosen == 0
    current = divisors(channels)[len(divisors(channels)) // 2]
    kept = ideal_groups(channels, (side, side), current=current, **kwargs)
    assert channels % kept == 0
    lenient = ideal_groups(channels, (side, side), current=current, tolerance=1e9, **kwargs)
    degenerate = channels // current * side * side <= 2  # no gradient: never chosen
    assert lenient == current or (degenerate and lenient != current)


def test_degenerate_groups_are_refused():
    with pytest.raises(ValueError, match="at most 2 elements in any group"):
        ideal_groups(2, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(channels=0), "channels must be a positive int"),
        (dict(current=5), r"groups must be a positive divisor of channels=64 \(one of \[1, 2"),
        (dict(spatial_size=(7, 0)), "spatial_size must be"),
        (dict(input_mean_square=0.0), "input_mean_square must be positive"),
        (dict(input_mean_fraction=1.0), r"input_mean_fraction must be in \[0, 1\)"),
        (dict(activation="swish"), "activation must be one of relu, gelu"),
        (dict(activation=-1.0), "activation gain must be a positive"),
        (dict(tolerance=-0.1), "tolerance must be a non-negative"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"channels": 64, "spatial_size": (7, 7), **kwargs}
    with pytest.raises(ValueError, match=message):
        ideal_groups(arguments.pop("channels"), arguments.pop("spatial_size"), **arguments)


def _resnet18_gn():
    torch.manual_seed(0)
    return timm.create_model("resnet18", norm_layer="groupnorm")


def test_gn_calibrate_on_a_timm_cnn():
    model = _resnet18_gn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model, report = gn_calibrate(model, (3, 64, 64))

    assert model.training  # mode restored
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)  # only num_groups changed

    norms = {n: m for n, m in model.named_modules() if isinstance(m, nn.GroupNorm)}
    assert set(report.groups()) == set(norms)
    assert not report.skipped
    for layer in report.layers:
        assert norms[layer.name].num_groups == layer.groups
        assert layer.channels % layer.groups == 0
        # never further from isometry than the count it replaced
        assert abs(math.log(layer.gain())) <= abs(math.log(layer.gain(layer.groups_before))) + 1e-9
    kappa = {layer.name: layer.activation_gain for layer in report.layers}
    assert kappa["bn1"] == kappa["layer1.0.bn1"] == pytest.approx(0.5)  # ReLU follows
    # bn2 feeds the residual add (the in-place `x += shortcut` is not an activation)
    assert kappa["layer1.0.bn2"] == kappa["layer2.0.downsample.1"] == pytest.approx(1.0)
    assert any(layer.groups != layer.groups_before for layer in report.layers)
    assert str(report).startswith("| layer | C | HxW |")

    # deterministic, and a builder works as well as an instance
    _, again = gn_calibrate(_resnet18_gn, (3, 64, 64))
    assert again.groups() == report.groups()


def test_calibrated_layers_are_measurably_closer_to_isometry():
    """Replay each calibrated block with its recorded input: measured gains move towards 1."""
    model = _resnet18_gn().eval()
    inputs = {}
    convs = {"layer2.1.bn1": "layer2.1.conv1", "layer4.0.bn1": "layer4.0.conv1"}
    hooks = [
        model.get_submodule(conv).register_forward_hook(
            lambda m, args, out, key=norm: inputs.__setitem__(key, args[0].detach().clone())
        )
        for norm, conv in convs.items()
    ]
    _, report = gn_calibrate(model, (3, 64, 64))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    for hook in hooks:
        hook.remove()
    layers = {layer.name: layer for layer in report.layers}
    for norm, conv_name in convs.items():
        layer = layers[norm]
        assert layer.groups != layer.groups_before
        conv = model.get_submodule(conv_name)
        gains = {}
        for groups in (layer.groups_before, layer.groups):
            x = inputs[norm].clone().requires_grad_()
            z = torch.relu(nn.GroupNorm(groups, conv.out_channels)(conv(x)))
            dz = torch.randn(z.shape, generator=torch.Generator().manual_seed(1))
            (dx,) = torch.autograd.grad(z, x, dz)
            gains[groups] = (dx.norm() / dz.norm()).item()
        assert abs(math.log(gains[layer.groups])) < abs(math.log(gains[layer.groups_before]))


def test_gn_calibrate_handles_norm_act_layers_and_skips_norms_not_fed_by_a_conv():
    model = timm.create_model("resnetv2_50x1_bit", num_classes=0)
    _, report = gn_calibrate(model, (3, 64, 64), batch_size=1)
    layers = {layer.name: layer for layer in report.layers}
    # pre-activation: norm1 normalizes the residual stream, norm2/norm3 follow convs
    assert "stages.0.blocks.1.norm1" in report.skipped
    assert "fed by" in report.skipped["stages.0.blocks.1.norm1"]
    assert layers["stages.0.blocks.1.norm2"].activation_gain == pytest.approx(0.5)  # GroupNormAct


def test_gn_calibrate_checks_its_arguments():
    with pytest.raises(TypeError, match=r"model_or_builder must be an nn\.Module or a callable"):
        gn_calibrate("resnet50_gn", (3, 64, 64))
    with pytest.raises(TypeError, match=r"model_or_builder\(\) must return an nn.Module"):
        gn_calibrate(lambda: None, (3, 64, 64))
    with pytest.raises(ValueError, match="input_size must be"):
        gn_calibrate(nn.Identity(), (64, 64))
    with pytest.raises(ValueError, match="batch_size must be"):
        gn_calibrate(nn.Identity(), (3, 8, 8), batch_size=0)


def test_set_gn_groups_validates_before_changing_anything():
    model = _resnet18_gn()
    groups = {n: 1 for n, m in model.named_modules() if isinstance(m, nn.GroupNorm)}
    with pytest.raises(ValueError, match=r"unknown: \['nope'\], missing: none"):
        set_gn_groups(model, {**groups, "nope": 1})
    with pytest.raises(ValueError, match=r"groups\['bn1'\]: groups must be a positive divisor"):
        set_gn_groups(model, {**groups, "bn1": 3})
    assert all(m.num_groups == 32 for m in model.modules() if isinstance(m, nn.GroupNorm))


@pytest.mark.parametrize("variant", ["resnet18_gncal", "resnet50_gncal"])
def test_shipped_tables_are_still_what_the_rule_picks(variant):
    """Re-measured at the shipped settings, every shipped count is within the band the rule
    cannot tell apart (twice the tolerance: measurements differ slightly across machines)."""
    model = timm.create_model(variant)
    _, report = gn_calibrate(model, **CALIBRATION, tolerance=2 * DEFAULT_TOLERANCE)
    assert report.groups() == load_gn_groups()[variant]


def test_docs_table_is_the_shipped_resnet50_gncal_table():
    text = DOCS.read_text()
    section = text.split("<!-- resnet50_gncal table -->")[1].split("<!-- end -->")[0]
    rows = re.findall(r"^\| ([\w.]+) \|(?:[^|]*\|){7} (\d+) \|[^|]*\|$", section, re.MULTILINE)
    assert {name: int(g) for name, g in rows} == load_gn_groups()["resnet50_gncal"]


def test_variants_are_timm_citizens():
    model = timm.create_model("resnet18_gncal", num_classes=7, in_chans=1)
    out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 7)
    out.sum().backward()
    shipped = load_gn_groups()["resnet18_gncal"]
    assert {n: m.num_groups for n, m in model.named_modules() if isinstance(m, nn.GroupNorm)} == (
        shipped
    )
    features = timm.create_model("resnet50_gncal", features_only=True, out_indices=(1, 4))
    assert [f.shape[1] for f in features(torch.randn(1, 3, 64, 64))] == [256, 2048]
    model = timm.create_model("resnet18_gncal").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


def test_variant_without_weights_refuses_pretrained():
    with pytest.raises(ValueError, match="resnet18_gncal has no pretrained weights"):
        timm.create_model("resnet18_gncal", pretrained=True)


def test_pretrained_tag_loads_timm_resnet50_gn_strictly_as_init_only(hub_cache, timm_checkpoint):
    checkpoint, base_logits = timm_checkpoint("resnet50_gn")
    hub_cache.add("timm/resnet50_gn.a1h_in1k", {"model.safetensors": checkpoint})
    report = hub_cache.load_pretrained("resnet50_gncal.a1h_in1k", checkpoint)
    assert report["same"]
    assert report["new"] == report["dropped"] == []
    assert len(report["init_warnings"]) == 1
    assert not torch.allclose(torch.tensor(report["logits"]), base_logits)
