"""GroupNorm ResNets with layer-wise calibrated group counts (paper E, arXiv 2302.03193).

timm's ``ResNet`` with GroupNorm everywhere (``resnet50_gn``'s recipe) and each GroupNorm's
group count set by ``zoo.guidelines.gn_calibrate``: the count that brings its
``conv -> GN -> act`` block closest to isometric gradient propagation at initialization. The
rule is ours, derived from the paper's principle (``docs/cnn.md``). The per-layer tables live
in ``resnet_gncal_groups.json``, written by ``python tools/gncal_tables.py --write`` from
:func:`calibrate_variant` (its settings: ``CALIBRATION``); ``tests/test_gn_groups.py`` checks
they are still what the rule picks.

Group counts do not change parameters, so ``resnet50_gncal.a1h_in1k`` loads timm's
``resnet50_gn.a1h_in1k`` checkpoint strictly; it computes a different function (init-only:
fine-tune before use; loading warns).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import timm
from timm.models import register_model
from timm.models._registry import generate_default_cfgs
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from zoo.guidelines.gn_groups import GNCalibration, gn_calibrate, set_gn_groups
from zoo.models._pretrained import build_variant, registry_default_cfgs, resnet_cfg

__all__ = ["BASES", "CALIBRATION", "GNCalibratedResNet", "calibrate_variant", "load_gn_groups"]

GROUPS_FILE = Path(__file__).with_name("resnet_gncal_groups.json")

# The timm model (and arguments) each variant is calibrated from: GroupNorm with 32 groups.
BASES: dict[str, tuple[str, dict]] = {
    "resnet18_gncal": ("resnet18", {"norm_layer": "groupnorm"}),
    "resnet50_gncal": ("resnet50_gn", {}),
}
# gn_calibrate settings of the shipped tables: seeded Gaussian images at the default size.
CALIBRATION = {"input_size": (3, 224, 224), "batch_size": 8, "seed": 0}


def calibrate_variant(variant: str) -> GNCalibration:
    """Run :func:`gn_calibrate` on the variant's base at ``CALIBRATION`` (about 20 s for
    ResNet-50 on two CPU cores)."""
    name, kwargs = BASES[variant]
    _, report = gn_calibrate(lambda: timm.create_model(name, **kwargs), **CALIBRATION)
    return report


def load_gn_groups() -> dict[str, dict[str, int]]:
    """``{variant: {GroupNorm name: group count}}`` as shipped."""
    return json.loads(GROUPS_FILE.read_text())["variants"]


class GNCalibratedResNet(ResNet):
    """timm ``ResNet`` with GroupNorm layers whose group counts are given per layer.

    Args:
        gn_groups: ``{norm module name: group count}`` for every GroupNorm of the model.
        Other arguments are timm ``ResNet``'s (``norm_layer`` is GroupNorm).
    """

    def __init__(self, *args, gn_groups: Mapping[str, int], **kwargs):
        super().__init__(*args, norm_layer="groupnorm", **kwargs)
        set_gn_groups(self, gn_groups)


def _same_weights(state_dict: dict, model) -> dict:
    return state_dict  # group counts are not parameters


VARIANTS = list(BASES)
default_cfgs = generate_default_cfgs(registry_default_cfgs(VARIANTS, resnet_cfg))


def _create_resnet_gncal(variant: str, pretrained: bool = False, **kwargs) -> GNCalibratedResNet:
    if "gn_groups" not in kwargs:
        kwargs["gn_groups"] = load_gn_groups()[variant]
    return build_variant(
        GNCalibratedResNet, variant, pretrained, pretrained_filter_fn=_same_weights, **kwargs
    )


@register_model
def resnet18_gncal(pretrained: bool = False, **kwargs) -> GNCalibratedResNet:
    """ResNet-18 with GroupNorm, group counts calibrated per layer."""
    model_args = dict(block=BasicBlock, layers=(2, 2, 2, 2))
    return _create_resnet_gncal("resnet18_gncal", pretrained, **dict(model_args, **kwargs))


@register_model
def resnet50_gncal(pretrained: bool = False, **kwargs) -> GNCalibratedResNet:
    """ResNet-50 with GroupNorm (``resnet50_gn``), group counts calibrated per layer."""
    model_args = dict(block=Bottleneck, layers=(3, 4, 6, 3))
    return _create_resnet_gncal("resnet50_gncal", pretrained, **dict(model_args, **kwargs))
