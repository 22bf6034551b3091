"""Analysis toolkit: ERF, dead pixel test, robustness sweep, NaN hazards, audit."""

from __future__ import annotations

import json
import math
from functools import partial

import pytest
import timm
import torch
from torch import nn

import zoo  # noqa: F401  (registers the variants)
from zoo.analysis._models import analysis_model
from zoo.analysis.audit import audit
from zoo.analysis.dead_pixel import dead_pixel_comparison, dead_pixel_test
from zoo.analysis.erf import (
    PatchifyLinear,
    checkerboard_index,
    erf,
    erf_map_of,
    gaussian_fit,
    gradient_ready_copy,
    noise_images,
    theoretical_receptive_field,
)
from zoo.analysis.nan_hazards import CASES, check_loss_stability, classic_log_head
from zoo.analysis.robustness import robustness_sweep
from zoo.cli import main
from zoo.losses import log_depth_from_logits, silog_loss_classic, stable_silog_loss


def loop_reference(model, x, target_fn):
    """The papers' loop written out independently: one image at a time, ReLU, mean."""
    total = torch.zeros(x.shape[2:], dtype=torch.float64)
    model.eval()
    for image in x:
        image = image[None].clone().requires_grad_(True)
        features = target_fn(model, image)
        value = features[0, :, features.shape[2] // 2, features.shape[3] // 2].mean()
        (grad,) = torch.autograd.grad(value, image)
        total += grad[0].mean(dim=0).relu().double()
    return total / len(x)


def stage_target(index):
    return lambda m, x: m.forward_intermediates(x, indices=[index], intermediates_only=True)[0]


@pytest.mark.parametrize(
    ("name", "kwargs", "size", "stage"),
    [("resnet18", {}, 64, 2), ("vit_tiny_patch16_224", {"img_size": 64}, 64, 2)],
)
def test_batched_erf_equals_the_per_image_loop(name, kwargs, size, stage):
    torch.manual_seed(0)
    model = timm.create_model(name, **kwargs)
    x = noise_images(5, (3, size, size), seed=1)
    reference = loop_reference(model, x, stage_target(stage))
    batched = erf(model, x, stage, batch_size=5, progress=False, receptive_field=False)
    looped = erf(model, x, stage, batched=False, progress=False, receptive_field=False)
    torch.testing.assert_close(batched.map, reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(looped.map, reference, rtol=0, atol=1e-6)
    assert batched.map.sum() > 0
    assert batched.normalized.sum().item() == pytest.approx(1.0, abs=1e-9)
    # the caller's model is left as it was
    assert all(p.requires_grad for p in model.parameters())


class SharedConvOutput(nn.Module):
    """conv -> bn, but the conv's output also feeds the sum: folding bn would change it."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))

    def forward(self, x):
        y = self.conv(x)
        return self.head(self.bn(y) + y)


def _randomize_bn_statistics(model):
    torch.manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()


def test_gradient_ready_copy_folds_batch_norms_and_keeps_the_function():
    model = timm.create_model("resnet18").train()
    _randomize_bn_statistics(model)
    ready = gradient_ready_copy(model)
    norms = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert not [n for n, m in ready.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(isinstance(ready.get_submodule(n), nn.Identity) for n in norms)
    # the caller's model is untouched: same norms, same mode
    assert model.training
    assert all(isinstance(model.get_submodule(n), nn.BatchNorm2d) for n in norms)
    x = noise_images(2, (3, 64, 64), seed=2)
    with torch.no_grad():
        expected, got = model.eval()(x), ready(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    torch.testing.assert_close(
        erf_map_of(model, x, 2, fold_norms=True), erf_map_of(model, x, 2, fold_norms=False),
        rtol=1e-4, atol=1e-9,
    )  # fmt: skip


def test_gradient_ready_copy_folds_only_norms_that_alone_read_the_conv():
    model = SharedConvOutput().eval()
    _randomize_bn_statistics(model)
    ready = gradient_ready_copy(model)
    assert isinstance(ready.bn, nn.BatchNorm2d)  # conv's output has a second reader
    assert isinstance(ready.head[1], nn.Identity)  # folded into head[0]
    x = noise_images(2, (3, 16, 16), seed=4)
    with torch.no_grad():
        torch.testing.assert_close(ready(x), model(x), rtol=1e-5, atol=1e-5)
    # a norm named as the ERF target stays where it is
    assert isinstance(gradient_ready_copy(model, "head.1").head[1], nn.BatchNorm2d)


@pytest.mark.parametrize("size", [(64, 64), (70, 53)])
def test_patchify_linear_is_the_patch_conv(size):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 16, stride=16)
    x = torch.randn(2, 3, *size, requires_grad=True)
    y = conv(x)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    y2 = PatchifyLinear(conv)(x2)
    (grad2,) = torch.autograd.grad(y2.square().sum(), x2)
    torch.testing.assert_close(y2, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad2, grad, rtol=1e-5, atol=1e-5)
    assert PatchifyLinear.applies(conv)
    assert not PatchifyLinear.applies(nn.Conv2d(3, 8, 3, stride=2, padding=1))
    assert not PatchifyLinear.applies(nn.Conv2d(3, 8, 1))


def test_erf_leaves_the_callers_model_exactly_as_it_was():
    model = timm.create_model("resnet18").train()
    model.layer2.eval()  # mixed modes, as a frozen part of a training model
    weights = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in weights.items()}
    modes = {n: m.training for n, m in model.named_modules()}
    erf(model, noise_images(2, (3, 32, 32)), 2, progress=False, receptive_field=False)
    assert all(p is weights[n] for n, p in model.named_parameters())  # the same objects
    assert all(torch.equal(weights[n], before[n]) for n in weights)
    assert all(p.is_contiguous() and p.requires_grad for p in weights.values())
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert all(isinstance(model.get_submodule(n), nn.BatchNorm2d) for n in ("bn1", "layer1.0.bn2"))


def test_gradient_ready_vit_uses_a_matmul_patch_embedding():
    model = timm.create_model("vit_tiny_patch16_224", img_size=64)
    ready = gradient_ready_copy(model)
    assert isinstance(ready.patch_embed.proj, PatchifyLinear)
    assert isinstance(model.patch_embed.proj, nn.Conv2d)
    assert ready.blocks is model.blocks  # everything else is shared, not copied
    x = noise_images(3, (3, 64, 64), seed=5)
    torch.testing.assert_close(
        erf_map_of(model, x, 1, fold_norms=True), erf_map_of(model, x, 1, fold_norms=False),
        rtol=1e-4, atol=1e-9,
    )  # fmt: skip


def test_vit_stage_targets_exclude_prefix_tokens():
    model = timm.create_model("vit_tiny_patch16_224", img_size=64)
    features = model.forward_intermediates(
        torch.randn(1, 3, 64, 64), indices=[1], intermediates_only=True
    )[0]
    assert features.shape == (1, 192, 4, 4)  # the 4x4 patch grid, no class token


def test_gaussian_fit_recovers_sigma():
    ys, xs = torch.meshgrid(torch.arange(96.0), torch.arange(80.0), indexing="ij")
    synthetic = 3.0 * torch.exp(
        -((xs - 37.5) ** 2) / (2 * 7.0**2) - (ys - 50.0) ** 2 / (2 * 11.0**2)
    )
    fit = gaussian_fit(synthetic)
    assert fit.sigma_x == pytest.approx(7.0, rel=0.05)
    assert fit.sigma_y == pytest.approx(11.0, rel=0.05)
    assert fit.x0 == pytest.approx(37.5, abs=0.1)
    assert fit.r2 > 0.999


def test_checkerboard_index_on_synthetic_maps():
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    smooth = torch.exp(-((xs - 32) ** 2 + (ys - 32) ** 2) / (2 * 12.0**2))
    parity = 1 + 0.5 * ((xs + ys) % 2)  # one pixel colour 1.5x the other
    assert checkerboard_index(smooth)["index"] < 0.02
    assert checkerboard_index(smooth * parity)["index"] > 0.4
    pure = (xs + ys) % 2
    assert checkerboard_index(pure)["difference_ratio"] == pytest.approx(2.0)


def test_output_erf_checkerboard_is_higher_without_kernel_padding():
    """Random weights with active branches (analysis_model), 8 seeded 128x128 images.

    Measured here: resnet50 0.369, resnet50_kp 0.121 (resnet18: 0.278 vs 0.132). Odd kernels
    at stride 2 cover pixels of one parity with up to 16/9 as many taps; the bounds sit
    between the two with margin on both sides. If kernel padding did nothing the two models
    would be the same and the indices equal.
    """
    indices = {}
    for name in ("resnet50", "resnet50_kp"):
        result = erf(
            analysis_model(name), None, "output", num_images=8, input_size=(3, 128, 128),
            progress=False, receptive_field=False,
        )  # fmt: skip
        indices[name] = result.checkerboard["index"]
    assert indices["resnet50"] > 0.25, indices
    assert indices["resnet50_kp"] < 0.2, indices
    assert indices["resnet50"] > 2 * indices["resnet50_kp"], indices


def test_theoretical_receptive_field():
    # ResNet-50's last stage: 427 px, the number in paper H's Table 1
    rf, exceeds, _ = theoretical_receptive_field(timm.create_model("resnet50"), (3, 448, 448), 4)
    assert (rf, exceeds) == (427, False)
    # by hand: 3x3 (RF 3) -> 3x3/s2 (3 + 2*1 = 5) -> 3x3 (5 + 2*2 = 9)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.MaxPool2d(1),
        nn.Conv2d(4, 4, 3, padding=1),
    )
    assert theoretical_receptive_field(net, (3, 33, 33), "5") == (9, False, "")
    # a classifier's output sees everything; attention has no linearization
    assert theoretical_receptive_field(timm.create_model("resnet18"), (3, 64, 64))[1] is True
    vit = timm.create_model("vit_tiny_patch16_224", img_size=64)
    assert theoretical_receptive_field(vit, (3, 64, 64), 1)[0] is None


def test_dead_pixel_test_and_its_fix():
    model = analysis_model("resnet18")
    base, padded = dead_pixel_comparison(
        model, trained=False, name="resnet18", num_images=4, input_size=(3, 96, 96), pixels=8
    )
    for report in (base, padded):
        assert 0 <= report.weak_fraction <= 1
        assert report.output_change["weak"] >= 0
        assert report.output_change["strong"] > 0
        assert report.sensitivity.shape == (96, 96)
        json.dumps(report.summary())
    assert padded.name == "kernel_pad(resnet18)"
    assert padded.erf.checkerboard["index"] < base.erf.checkerboard["index"]
    # weak pixels move the output less than strong ones
    assert base.output_change["weak"] < base.output_change["strong"]
    # a pixel whose ERF is 0 for every image is dead for these images: perturbing it is blind
    report = dead_pixel_test(timm.create_model("resnet18"), num_images=4, input_size=(3, 64, 64))
    assert report.weak_fraction > 0


def test_preln_is_exactly_contrast_invariant_and_the_plain_vit_is_not():
    x = noise_images(4, (3, 224, 224), seed=3)
    sweeps = {}
    for name in ("vit_small_patch16_224", "vit_preln_s16"):
        sweeps[name] = robustness_sweep(
            analysis_model(name), x, name=name,
            corruptions={"contrast": (0.1, 0.5, 2.0, 10.0), "gaussian_noise": (0.1,)},
        )  # fmt: skip
    preln = {(r.corruption, r.level): r for r in sweeps["vit_preln_s16"].rows}
    plain = {(r.corruption, r.level): r for r in sweeps["vit_small_patch16_224"].rows}
    for level in (0.1, 0.5, 2.0, 10.0):
        assert preln["contrast", level].agreement == 1.0
        assert preln["contrast", level].max_output_change <= 1e-4
        assert plain["contrast", level].max_output_change > 1e-2
    # noise is not a rescaling: PreLN moves under it too
    assert preln["gaussian_noise", 0.1].max_output_change > 1e-3


def test_robustness_cli_with_labelled_images(tmp_path, capsys):
    from PIL import Image

    for label in (3, 7):
        folder = tmp_path / "images" / str(label)
        folder.mkdir(parents=True)
        for i in range(2):
            pixels = torch.randint(0, 255, (32, 32, 3), generator=torch.Generator().manual_seed(i))
            Image.fromarray(pixels.to(torch.uint8).numpy()).save(folder / f"{i}.png")
    code = main([
        "robustness", "resnet18", "--images", str(tmp_path / "images"),
        "--out", str(tmp_path / "out"), "--json",
    ])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    (report,) = result["reports"]
    assert report["clean_accuracy"] is not None  # integer sub-folders are labels
    assert {row["corruption"] for row in report["rows"]} == {
        "contrast", "brightness", "gaussian_noise", "gaussian_blur",
    }  # fmt: skip
    assert (tmp_path / "out").glob("*.png")


def test_classic_silog_hazards_and_the_stable_loss_has_none():
    log_head = partial(log_depth_from_logits, max_depth=10.0)
    # the classic loss with lambda = 1: sqrt at D = 0 and cancellation
    classic = check_loss_stability(partial(silog_loss_classic, lambd=1.0))
    failing = {(r.case, r.dtype) for r in classic.hazards}
    assert {
        ("perfect", "float32"),
        ("constant_scale", "float32"),
        ("cancellation", "float32"),
    } <= failing
    # log(sigmoid(x)) heads: -inf at saturated logits, even into the stable loss
    for head, safe in ((classic_log_head(10.0), False), (log_head, True)):
        report = check_loss_stability(
            stable_silog_loss, head=head, head_output="log_depth", cases=["saturated_logits"]
        )
        assert all(r.safe is safe for r in report.results), report.table()
    # mmseg-style clamping turns the saturated case into a dead gradient, not a NaN
    clamped = check_loss_stability(silog_loss_classic, cases=["saturated_logits"])
    assert all(r.safe and r.grad_zero for r in clamped.results)
    for lambd in (0.5, 0.85, 1.0):
        for sqrt in (False, True):
            stable = check_loss_stability(
                partial(stable_silog_loss, lambd=lambd, sqrt=sqrt), head=log_head,
                head_output="log_depth",
            )  # fmt: skip
            assert stable.hazards == [], stable.table()
            assert {r.case for r in stable.results} == set(CASES)


def test_stable_silog_equals_the_classic_d_where_the_classic_is_finite():
    generator = torch.Generator().manual_seed(0)
    target = 0.5 + 9 * torch.rand(3, 1, 16, 16, generator=generator, dtype=torch.float64)
    target[0, 0, :4] = 0  # some invalid pixels
    pred = target * torch.exp(
        0.3 * torch.randn(target.shape, generator=generator, dtype=torch.float64)
    )
    for lambd in (0.5, 0.85):
        classic = silog_loss_classic(pred, target, lambd=lambd, eps=1e-4)
        # classic is mean_n sqrt(D_n); compare per-sample D through single-sample calls
        for n in range(3):
            d_classic = silog_loss_classic(pred[n : n + 1], target[n : n + 1], lambd=lambd) ** 2
            d_stable = stable_silog_loss(pred[n : n + 1].log(), target[n : n + 1], lambd=lambd)
            assert d_stable.item() == pytest.approx(d_classic.item(), rel=1e-9)
        assert torch.isfinite(classic)


def test_audit_resnet50_json(capsys):
    assert main(["audit", "resnet50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = [layer["name"] for layer in report["H_dead_pixels"]["layers"]]
    assert names == [
        "conv1", "maxpool",
        "layer2.0.conv2", "layer2.0.downsample.0",
        "layer3.0.conv2", "layer3.0.downsample.0",
        "layer4.0.conv2", "layer4.0.downsample.0",
    ]  # fmt: skip
    assert report["F_gamma_decay"]["counts"] == {
        "last_in_branch": 16, "shortcut": 4, "inner": 32, "outside": 1,
    }  # fmt: skip
    assert report["D_dropout"]["applies"]
    assert not report["D_dropout"]["follows_guideline"]
    assert report["E_group_norm"]["applies"] is False


@pytest.mark.parametrize(
    ("name", "invariant", "gaussian"),
    [("vit_small_patch16_224", False, False), ("vit_preln_s16", True, False),
     ("vit_gauss_s16", False, True)],
)  # fmt: skip
def test_audit_vits(name, invariant, gaussian, capsys):
    assert main(["audit", name, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["G_scale_invariance"]["invariant"] is invariant
    assert report["C_attention_bias"]["gaussian_bias"] is gaussian
    if name == "vit_small_patch16_224":
        assert report["C_attention_bias"]["attention_bias"] == []
    assert main(["audit", name]) == 0
    assert "G input scale" in capsys.readouterr().out


def test_audit_reports_group_norm_layers_without_touching_the_model():
    model = timm.create_model("resnet50_gn")
    report = audit(model, "resnet50_gn")
    groups = report["E_group_norm"]
    assert groups["applies"]
    assert len(groups["layers"]) == 53
    assert all(m.num_groups == 32 for m in model.modules() if isinstance(m, nn.GroupNorm))
    assert all(layer["channels"] % layer["ideal_groups"] == 0 for layer in groups["layers"])


def test_erf_and_dead_pixel_commands(tmp_path, capsys):
    assert (
        main(
            [
                "erf",
                "resnet18",
                "--size",
                "64",
                "--num-images",
                "2",
                "--out",
                str(tmp_path),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["theoretical_rf_exceeds_input"] is True
    assert (tmp_path / "erf_resnet18.png").stat().st_size > 0
    assert (
        main(
            [
                "dead-pixel",
                "resnet18",
                "--size",
                "64",
                "--num-images",
                "2",
                "--pixels",
                "4",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "kernel_pad(resnet18)" in out
    with pytest.raises(SystemExit, match="Unknown model"):
        main(["audit", "not_a_model"])


def test_demo_writes_its_report(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "resnet50_kp" in text
    assert "vit_preln_s16" in text
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "contrast_vit_small_vs_preln.png", "erf_resnet50.png", "erf_resnet50_kp.png",
    ]  # fmt: skip


def test_bad_arguments_are_named():
    model = timm.create_model("resnet18")
    with pytest.raises(ValueError, match="target must be 'output'"):
        erf(model, noise_images(1, (3, 32, 32)), 1.5, progress=False)
    with pytest.raises(ValueError, match="target='nope' is not a module"):
        erf(model, noise_images(1, (3, 32, 32)), "nope", progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        erf(model, None, batch_size=0)
    with pytest.raises(ValueError, match="corruptions: unknown"):
        robustness_sweep(model, corruptions={"fog": (1,)})
    with pytest.raises(ValueError, match="cases: unknown"):
        check_loss_stability(silog_loss_classic, cases=["meteor"])
    with pytest.raises(ValueError, match="lambd must be in"):
        stable_silog_loss(torch.zeros(1, 4), torch.ones(1, 4), lambd=2)
    assert math.isnan(gaussian_fit(torch.zeros(8, 8)).sigma_x)
