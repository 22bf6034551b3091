"""zoo.mmseg: configs through mmseg:: inheritance, the ASPP head, the stable depth loss and
head, the gamma constructor and the non-finite-loss hook."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.configs import config_path, copy_config, list_configs
from zoo.guidelines.atrous import atrous_rates
from zoo.losses import silog_loss_classic

pytestmark = pytest.mark.mmseg

mmengine = pytest.importorskip("mmengine")
from mmengine.config import Config  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

import zoo.mmseg  # noqa: E402, F401  (registers the zoo's modules)
from zoo.mmseg.build import without_sync_bn  # noqa: E402

register_all_modules()

RESOLUTION_AWARE = {  # config -> (crop, output stride) the derived rates must come from
    "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128": ((128, 128), 1),
    "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_chase-db1-128x128": ((128, 128), 1),
    "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_hrf-256x256": ((256, 256), 1),
    "deeplabv3/deeplabv3-resaware_r101-d8_4xb2-40k_cityscapes-512x1024": ((512, 1024), 8),
    "deeplabv3/deeplabv3-resaware_r50-d8_4xb4-80k_isaid-896x896": ((896, 896), 8),
    "deeplabv3/deeplabv3-resaware_timm-resnet50-kp_4xb2-40k_cityscapes-512x1024": ((512, 1024), 8),
}


def cpu_model_cfg(cfg: Config) -> dict:
    """The model config with SyncBN -> BN (SyncBN needs a process group) and no download."""
    model = without_sync_bn(cfg.model.to_dict())
    model["pretrained"] = None
    return model


def mmseg_configs_dir() -> Path:
    """Where mmseg's own configs are installed (what ``mmseg::`` resolves to)."""
    from mmengine.config.utils import _get_package_and_cfg_path
    from mmengine.utils import get_installed_path

    package, _ = _get_package_and_cfg_path("mmseg::x/y.py")
    return Path(get_installed_path(package)) / ".mim" / "configs"


def test_every_config_is_covered():
    assert set(list_configs()) == {
        *RESOLUTION_AWARE,
        "depth/depthestimator-stable-silog_r50-d8_4xb8-25k_nyu-480x480",
    }


@pytest.mark.parametrize("name", sorted(RESOLUTION_AWARE))
def test_resolution_aware_configs_build_with_the_derived_dilations(name):
    cfg = Config.fromfile(str(config_path(name)))
    assert cfg.custom_imports == dict(imports=["zoo.mmseg"], allow_failed_imports=False)
    assert cfg.train_dataloader.dataset.type  # mmseg's dataset settings were inherited
    crop, stride = RESOLUTION_AWARE[name]
    model = MODELS.build(cpu_model_cfg(cfg))
    head = model.decode_head
    assert type(head).__name__ == "ResolutionAwareASPPHead"
    expected = (1, *atrous_rates(crop, stride))
    assert head.dilations == expected
    built = [m.conv.dilation[0] for m in head.aspp_modules]
    assert built == list(expected)
    assert expected[1:] != (12, 24, 36)


def test_timm_backbone_config_runs_the_zoo_variant():
    name = "deeplabv3/deeplabv3-resaware_timm-resnet50-kp_4xb2-40k_cityscapes-512x1024"
    model = MODELS.build(cpu_model_cfg(Config.fromfile(str(config_path(name))))).eval()
    assert type(model.backbone.timm_model).__name__ == "FeatureListNet"
    # kernel padding: the stem conv is 8x8 (paper H)
    assert model.backbone.timm_model.conv1.kernel_size == (8, 8)
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 64), mode="tensor")
    assert logits.shape == (1, 19, 8, 8)
    assert torch.isfinite(logits).all()


def test_depth_config_builds_the_stable_head_and_loss():
    name = "depth/depthestimator-stable-silog_r50-d8_4xb8-25k_nyu-480x480"
    cfg = Config.fromfile(str(config_path(name)))
    assert cfg.train_dataloader.dataset.type == "NYUDataset"
    assert all(step["type"] != "Albu" for step in cfg.train_dataloader.dataset.pipeline)
    model = MODELS.build(cpu_model_cfg(cfg)).eval()
    assert type(model.decode_head).__name__ == "StableDepthHead"
    assert model.decode_head.loss_decode.pred_space == "log_depth"
    with torch.no_grad():
        log_depth = model(torch.randn(1, 3, 64, 64), mode="tensor")
    assert log_depth.shape == (1, 1, 8, 8)
    assert (log_depth <= math.log(10.0) + 1e-6).all()


def test_a_config_outside_the_repo_inherits_a_zoo_config(tmp_path):
    name = "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128"
    user = tmp_path / "my_unet.py"
    user.write_text(
        f"_base_ = [{str(config_path(name))!r}]\n"
        "model = dict(decode_head=dict(num_classes=3), auxiliary_head=dict(num_classes=3))\n"
    )
    cfg = Config.fromfile(str(user))
    model = MODELS.build(cpu_model_cfg(cfg))
    assert model.decode_head.num_classes == 3
    assert model.decode_head.dilations == (1, 21, 42, 63)
    # a copy stands alone too (the zoo's configs inherit only mmseg:: bases), and a copy
    # never overwrites what is there
    copied = copy_config(name, tmp_path)
    assert Config.fromfile(str(copied)).model.decode_head.dilations == "auto"
    copied.write_text(copied.read_text() + "# mine\n")
    with pytest.raises(FileExistsError, match="dest"):
        copy_config(name, tmp_path)
    assert copied.read_text().endswith("# mine\n")
    with pytest.raises(ValueError, match="name: no zoo config"):
        config_path("unet/nope")


def test_aspp_head_explicit_dilations_and_errors():
    common = dict(in_channels=8, channels=4, num_classes=2)
    head = MODELS.build(dict(type="ResolutionAwareASPPHead", dilations=(1, 6, 12, 18), **common))
    assert head.dilations == (1, 6, 12, 18)
    with pytest.raises(ValueError, match="crop_size"):
        MODELS.build(dict(type="ResolutionAwareASPPHead", dilations="auto", **common))
    with pytest.raises(ValueError, match="dilations"):
        MODELS.build(dict(type="ResolutionAwareASPPHead", dilations="big", **common))
    with pytest.raises(ValueError, match="dilations"):
        MODELS.build(dict(type="ResolutionAwareASPPHead", dilations=(1, 0), **common))


# ------------------------------------------------------------------------------ depth loss


def mmseg_silog(pred, target, reduction="none"):
    return MODELS.build(dict(type="SiLogLoss", reduction=reduction))(pred, target)


def stable(**kwargs):
    return MODELS.build(dict(type="StableSiLogLoss", **kwargs))


def test_stable_silog_equals_mmseg_silog_without_the_root():
    torch.manual_seed(0)
    pred = torch.rand(4, 1, 12, 10) * 9 + 0.5
    target = torch.rand(4, 1, 12, 10) * 9 + 0.5
    target[0, 0, :3] = 0  # some invalid pixels
    classic = mmseg_silog(pred, target)
    assert torch.isfinite(classic).all()
    ours = stable(reduction="none", eps=1e-6)(pred, target)
    torch.testing.assert_close(ours, classic.pow(2), rtol=1e-5, atol=1e-7)
    # the mean over samples; sqrt=True is sqrt(D + sqrt_eps)
    with_root = stable(sqrt=True, sqrt_eps=1e-12, eps=1e-6)(pred, target)
    torch.testing.assert_close(with_root, mmseg_silog(pred, target, "mean"), rtol=1e-5, atol=1e-6)


def _grad_is_finite(loss_fn, pred, target):
    pred = pred.clone().requires_grad_(True)
    loss = loss_fn(pred, target)
    loss.backward()
    return bool(torch.isfinite(loss).all() and torch.isfinite(pred.grad).all())


@pytest.mark.parametrize(
    "case", ["zero_variance", "one_valid_pixel", "no_valid_pixel", "cancellation"]
)
def test_failure_cases_break_the_classic_loss_not_the_stable_one(case):
    target = torch.full((2, 1, 8, 8), 3.0, dtype=torch.float32)
    pred = target.clone()
    if case == "one_valid_pixel":
        target[0] = 0
        target[0, 0, 4, 4] = 2.0
        pred[0, 0, 4, 4] = 2.5
    elif case == "no_valid_pixel":
        target[0] = 0
    elif case == "cancellation":  # d ~ 9 +- 1e-6: one-pass mean(d^2) - mean(d)^2 < 0 here
        target = torch.exp(torch.full((2, 1, 8, 8), -9.0) + 1e-6 * torch.randn(2, 1, 8, 8))
        pred = torch.ones_like(target)
    # zero_variance: pred == target, D = 0 and the slope of sqrt(D) is infinite.
    # Cancellation needs lambda = 1 (var(d) alone, AdaBins-style): mmseg's formula with its
    # lambda exposed, since mmseg's SiLogLoss fixes 0.5.
    lambd = 1.0 if case == "cancellation" else 0.5
    if case == "cancellation":
        classic = partial(silog_loss_classic, lambd=1.0, eps=1e-6)
    else:
        classic = partial(mmseg_silog, reduction="mean")
    assert not _grad_is_finite(classic, pred, target)
    assert _grad_is_finite(stable(lambd=lambd), pred, target)
    assert _grad_is_finite(stable(lambd=lambd, sqrt=True), pred, target)


def test_saturated_logits_through_the_stable_head():
    """Logits of -100: max_depth * sigmoid(x) rounds to 0 and its log to -inf in float32;
    the stable head's log-depth is exact."""
    head = MODELS.build(
        dict(type="StableDepthHead", in_channels=4, channels=4, num_convs=0, max_depth=10.0)
    )
    logits = torch.full((2, 1, 8, 8), -100.0, requires_grad=True)
    target = torch.full((2, 1, 8, 8), 2.0)
    target[:, :, ::2] = 4.0
    classic_depth = 10.0 * torch.sigmoid(logits)
    classic = torch.log(classic_depth)
    assert torch.isinf(classic).all()
    from zoo.losses import log_depth_from_logits

    log_depth = log_depth_from_logits(logits, head.max_depth)
    assert torch.isfinite(log_depth).all()
    loss = stable(pred_space="log_depth")(log_depth, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0  # not a dead gradient either


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    batch=st.integers(1, 3),
    size=st.integers(1, 6),
    lambd=st.floats(0.0, 1.0),
    sqrt=st.booleans(),
)
def test_stable_loss_is_finite_for_any_valid_input(data, batch, size, lambd, sqrt):
    shape = (batch, 1, size, size)
    elements = st.floats(-30.0, 5.0, allow_nan=False, width=32)
    log_pred = torch.tensor(data.draw(st.lists(elements, min_size=batch * size * size,
                                               max_size=batch * size * size)))  # fmt: skip
    depth = st.one_of(st.just(0.0), st.floats(2.0**-12, 1e4, width=32))  # 0: invalid
    target = torch.tensor(data.draw(st.lists(depth, min_size=batch * size * size,
                                             max_size=batch * size * size)))  # fmt: skip
    log_pred = log_pred.reshape(shape).requires_grad_(True)
    loss = stable(pred_space="log_depth", lambd=lambd, sqrt=sqrt)(log_pred, target.reshape(shape))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(log_pred.grad).all()


def test_stable_loss_rejects_bad_options():
    with pytest.raises(ValueError, match="pred_space"):
        stable(pred_space="logits")
    with pytest.raises(ValueError, match="reduction"):
        stable(reduction="max")
    with pytest.raises(ValueError, match="lambd"):
        stable(lambd=1.5)
    with pytest.raises(ValueError, match="min_valid_pixels"):
        stable(min_valid_pixels=1)


# ------------------------------------------------------------------- gamma constructor (F)


def _weight_decay_by_name(optimizer, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}


def _build_wrapper(model, **paramwise):
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type="GammaDecayOptimWrapperConstructor",
            optim_wrapper_cfg=dict(
                type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01, weight_decay=1e-4)
            ),
            paramwise_cfg=paramwise,
        )
    )
    return constructor, constructor(model)


def test_gamma_constructor_yields_the_groups_of_gamma_decay_groups():
    from zoo.guidelines import gamma_decay_groups

    backbone = MODELS.build(dict(type="ResNetV1c", depth=50, norm_cfg=dict(type="BN")))
    constructor, wrapper = _build_wrapper(backbone)
    got = _weight_decay_by_name(wrapper.optimizer, backbone)
    groups = gamma_decay_groups(backbone, weight_decay=1e-4)
    names = {id(p): n for n, p in backbone.named_parameters()}
    expected = {names[id(p)]: g["weight_decay"] for g in groups for p in g["params"]}
    assert got == expected
    assert len(wrapper.optimizer.param_groups) == 2
    assert {r.category for r in constructor.report} == {
        "last_in_branch", "shortcut", "inner", "outside"
    }  # fmt: skip
    assert constructor.untraced == []


def test_gamma_constructor_on_a_segmentor_composes_with_paramwise_cfg():
    name = "deeplabv3/deeplabv3-resaware_r101-d8_4xb2-40k_cityscapes-512x1024"
    cfg = cpu_model_cfg(Config.fromfile(str(config_path(name))))
    cfg["backbone"]["depth"] = 50  # R-101's structure, built faster
    model = MODELS.build(cfg)
    constructor, wrapper = _build_wrapper(
        model, gamma_policy="paper", custom_keys={"decode_head": dict(lr_mult=10.0)}
    )
    decay = _weight_decay_by_name(wrapper.optimizer, model)
    assert set(decay) == {n for n, _ in model.named_parameters()}
    assert constructor.untraced == []  # the whole segmentor traces (mode='tensor')
    assert decay["decode_head.bottleneck.bn.weight"] == 0.0  # outside residual branches
    assert decay["backbone.layer1.0.bn3.weight"] == 1e-4  # last norm of a branch: decays
    assert decay["backbone.layer1.0.downsample.1.weight"] == 0.0  # shortcut: no decay
    lrs = {id(p): g["lr"] for g in wrapper.optimizer.param_groups for p in g["params"]}
    assert lrs[id(model.decode_head.conv_seg.weight)] == pytest.approx(0.1)
    assert lrs[id(model.backbone.stem[0].weight)] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="norm_decay_mult"):
        _build_wrapper(model, norm_decay_mult=0.0)
    with pytest.raises(ValueError, match="policy"):
        _build_wrapper(model, gamma_policy="some")


class DataDependentHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x)) if x.sum() > 0 else x  # fx cannot trace this


class SegmentorLike(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = MODELS.build(dict(type="ResNetV1c", depth=18, norm_cfg=dict(type="BN")))
        self.decode_head = DataDependentHead()

    def forward(self, x):
        return self.decode_head(self.backbone(x)[-1][:, :4])


def test_gamma_constructor_classifies_untraceable_children_as_outside():
    from zoo.guidelines import gamma_decay_groups

    model = SegmentorLike()
    constructor, wrapper = _build_wrapper(model)
    assert constructor.untraced == ["decode_head"]
    decay = _weight_decay_by_name(wrapper.optimizer, model)
    assert decay["decode_head.bn.weight"] == 0.0
    groups = gamma_decay_groups(model.backbone, weight_decay=1e-4)
    names = {id(p): n for n, p in model.backbone.named_parameters()}
    expected = {f"backbone.{names[id(p)]}": g["weight_decay"] for g in groups for p in g["params"]}
    assert {k: v for k, v in decay.items() if k.startswith("backbone.")} == expected


# ------------------------------------------------------------------------ NonFiniteLossHook


def test_non_finite_loss_hook_stops_a_run_fed_a_nan(tmp_path):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    from zoo.mmseg import NonFiniteLossError

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.decode_head = torch.nn.Linear(4, 1)

        def forward(self, inputs, targets=None, mode="tensor"):
            pred = self.decode_head(inputs)  # default_collate stacked the batch
            if mode == "loss":
                return {
                    "loss_mse": (pred - targets).pow(2).mean(),
                    "loss_aux": pred.abs().mean() * 0,
                }
            return pred

    samples = [dict(inputs=torch.randn(4), targets=torch.randn(1)) for _ in range(8)]
    samples[5]["inputs"][2] = float("nan")  # the 3rd batch of two carries a NaN
    model = Tiny()
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=samples,
            sampler=dict(type="DefaultSampler", shuffle=False),
            collate_fn=dict(type="default_collate"),
            batch_size=2,
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=4),
        custom_hooks=[dict(type="NonFiniteLossHook")],
        default_scope="mmseg",
        default_hooks=dict(checkpoint=None, logger=dict(type="LoggerHook", interval=1)),
    )
    with pytest.raises(NonFiniteLossError) as stopped:
        runner.train()
    report = stopped.value.report
    assert report["iteration"] == 3
    assert report["non_finite_loss_terms"] == ["loss_mse", "loss_aux"]
    assert report["inputs"]["non_finite"] == 1
    assert report["prediction"]["non_finite"] == 1
    message = str(stopped.value)
    assert "iteration 3" in message
    assert "loss_mse" in message
    # training stopped before the NaN reached the weights
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ------------------------------------------------------------------- registry and publishing


def test_every_zoo_config_is_a_registered_mmseg_variant():
    from zoo.hub.registry import load_registry

    variants = [v for v in load_registry() if v.family == "mmseg"]
    assert sorted(v.config for v in variants) == list_configs()
    mmseg_configs = mmseg_configs_dir()
    for variant in variants:
        assert (mmseg_configs / f"{variant.base_architecture}.py").is_file(), variant.name
        assert f"mmseg::{variant.base_architecture}.py" in config_path(variant.config).read_text()


def test_safetensors_load_from_paths(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    from safetensors.torch import save_file

    state = {"w": torch.arange(4.0)}
    save_file(state, tmp_path / "run.safetensors")
    for name in (str(tmp_path / "run.safetensors"), f"safetensors:{tmp_path / 'run.safetensors'}"):
        loaded = CheckpointLoader.load_checkpoint(name)
        assert torch.equal(loaded["state_dict"]["w"], state["w"])
    # other schemes keep their own loaders
    assert CheckpointLoader._get_checkpoint_loader("https://x/y.safetensors").__name__ == (
        "load_from_http"
    )


LOAD_MMSEG = """
import json, sys, torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
from safetensors.torch import load_file
import zoo.mmseg
register_all_modules()
cfg = Config.fromfile(sys.argv[1])
source = load_file(sys.argv[2])
model = MODELS.build(cfg.model)
load_checkpoint(model, cfg.load_from, map_location="cpu", strict=True)
via_load_from = all(torch.equal(model.state_dict()[k], v) for k, v in source.items())
fresh = MODELS.build(cfg.model)
fresh.init_cfg = dict(type="Pretrained", checkpoint=cfg.load_from)
fresh.init_weights()
via_init_cfg = all(torch.equal(fresh.state_dict()[k], v) for k, v in source.items())
print(json.dumps({"load_from": cfg.load_from, "via_load_from": via_load_from,
                  "via_init_cfg": via_init_cfg}))
"""


def test_publish_an_mmseg_checkpoint_and_load_it_through_load_from_and_init_cfg(
    tmp_path, own_registry, hub_cache, recording_hf_api
):
    import os
    import subprocess
    import sys

    from safetensors.torch import save_file

    from zoo.hub.publish import prepare_repo_folder, publish
    from zoo.hub.registry import REGISTRY_ENV
    from zoo.hub.registry import load_registry as load

    name = "unet_s5_d16_deeplabv3_resaware_stare_128"
    cfg = Config.fromfile(
        str(config_path("unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128"))
    )
    torch.manual_seed(0)
    checkpoint = tmp_path / "iter_4.safetensors"
    save_file(MODELS.build(cfg.model).state_dict(), checkpoint)
    registry, cards = own_registry
    repo_id = "guidezoo/unet-resaware-stare"
    plan = prepare_repo_folder(checkpoint, name, repo_id, "stare_test", tmp_path / "folder",
                               metrics=["stare:test:mDice:50.0:4 iterations, a test"])  # fmt: skip
    assert sorted(p.name for p in plan.files) == ["README.md", "config.py", "model.safetensors"]
    assert (
        "load_from = 'hf-hub:guidezoo/unet-resaware-stare'"
        in (plan.folder / "config.py").read_text()
    )
    revision = publish(plan, api=recording_hf_api(), registry_dir=registry, cards_dir=cards)
    recorded = load(registry).variant(name).weights[-1]
    assert (recorded.hub_id, recorded.revision, recorded.sha256) == (repo_id, revision, plan.sha256)
    assert "load_from = 'hf-hub:guidezoo/unet-resaware-stare'" in (cards / f"{name}.md").read_text()

    hub_cache.add(repo_id, {p.name: p for p in plan.files}, revision=revision)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_MMSEG, str(plan.folder / "config.py"), str(checkpoint)],
        capture_output=True, text=True, check=False,
        env={**os.environ, **hub_cache.env, REGISTRY_ENV: str(registry)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"load_from": f"hf-hub:{repo_id}", "via_load_from": True, "via_init_cfg": True}


def test_audit_of_mmseg_configs_reports_rates_against_the_crop(capsys):
    from zoo.cli import main

    mmseg_config = (
        mmseg_configs_dir() / "deeplabv3" / "deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py"
    )
    assert main(["audit", str(mmseg_config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (head,) = report["heads"]
    assert (head["feature_size"], head["output_stride"]) == ([64, 128], 8)  # measured
    assert [r["rate"] for r in head["current"]] == [12, 24, 36]
    assert [r["fits"] for r in head["current"]] == [True, True, False]
    assert [r["rate"] for r in head["derived"]] == [10, 21, 31]
    assert head["follows_guideline"] is False
    # the zoo's config follows it; the U-Net head runs at full resolution
    assert main(["audit", "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128"]) == 0
    text = capsys.readouterr().out
    assert "feature map 128x128, output stride 1" in text
    assert "follows the guideline" in text
    with pytest.raises(SystemExit, match="neither a file nor a zoo config"):
        main(["audit", "nope.py"])
