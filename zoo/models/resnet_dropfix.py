"""ResNets with dropout where it helps (paper D, arXiv 2302.06112).

``branch_drop_rate``: one element-wise dropout in every residual branch, after the branch's
last BN (+ activation) and before its last conv. ``drop_rate``: dropout on the final feature
map *before* global average pooling (timm drops after pooling). See ``zoo.guidelines.dropout``
for the exact positions. No parameter is added: timm's checkpoint of the base architecture
loads exactly (strict), and in eval mode the model computes what the base computes, so the
pretrained tags are exact conversions.
"""

from __future__ import annotations

from timm.layers import BatchNormAct2d, create_conv2d
from timm.models import register_model
from timm.models._registry import generate_default_cfgs
from timm.models.resnet import BasicBlock, Bottleneck

from zoo.guidelines.dropout import DropoutPlacedResNet, DropoutPlacedResNetV2
from zoo.models._pretrained import build_variant, registry_default_cfgs, resnet_cfg


def _same_weights(state_dict: dict, model) -> dict:
    return state_dict


VARIANTS = ["resnet18_dropfix", "resnet50_dropfix", "resnetv2_50_dropfix"]
default_cfgs = generate_default_cfgs(registry_default_cfgs(VARIANTS, resnet_cfg))


@register_model
def resnet18_dropfix(pretrained: bool = False, **kwargs) -> DropoutPlacedResNet:
    """ResNet-18 with dropout before each branch's last conv and before global pooling."""
    model_args = dict(block=BasicBlock, layers=(2, 2, 2, 2))
    return build_variant(
        DropoutPlacedResNet, "resnet18_dropfix", pretrained,
        pretrained_filter_fn=_same_weights, **dict(model_args, **kwargs),
    )  # fmt: skip


@register_model
def resnet50_dropfix(pretrained: bool = False, **kwargs) -> DropoutPlacedResNet:
    """ResNet-50 with dropout before each branch's last conv and before global pooling."""
    model_args = dict(block=Bottleneck, layers=(3, 4, 6, 3))
    return build_variant(
        DropoutPlacedResNet, "resnet50_dropfix", pretrained,
        pretrained_filter_fn=_same_weights, **dict(model_args, **kwargs),
    )  # fmt: skip


@register_model
def resnetv2_50_dropfix(pretrained: bool = False, **kwargs) -> DropoutPlacedResNetV2:
    """Pre-activation ResNetV2-50 with dropout after each branch's last BN-ReLU, before its
    last conv (the authors' order), and before global pooling."""
    model_args = dict(layers=[3, 4, 6, 3], conv_layer=create_conv2d, norm_layer=BatchNormAct2d)
    return build_variant(
        DropoutPlacedResNetV2, "resnetv2_50_dropfix", pretrained,
        pretrained_filter_fn=_same_weights, feature_cfg=dict(flatten_sequential=True),
        **dict(model_args, **kwargs),
    )  # fmt: skip
