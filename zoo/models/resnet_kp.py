"""ResNets with kernel padding (paper H, arXiv 2108.13576): even kernels against dead pixels.

timm's ``ResNet`` with ``zoo.guidelines.kernel_pad`` applied at construction: the stride-2
stem conv (7x7 -> 8x8), max-pool (3x3 -> 4x4), 3x3 convs (-> 4x4) and 1x1 downsample convs
(-> 2x2). ``kernel_pad_pools=False`` keeps the max-pool, and the model then computes exactly
what the base ResNet computes with the same (zero-padded) weights. Built without pretrained
weights, the enlarged kernels are initialised in full (timm's ResNet conv init), so a model
trained from scratch has no dead pixels at initialization either.

Pretrained tags convert timm's checkpoint of the base architecture by zero-padding every
enlarged kernel at the bottom/right. With the paper's max-pool change (the default) that is an
init-only conversion (fine-tune before use; loading warns); with ``kernel_pad_pools=False`` it
is exact and loads without a warning.
"""

from __future__ import annotations

from timm.models import register_model
from timm.models._registry import generate_default_cfgs
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from zoo.guidelines.kernel_pad import init_enlarged_kernels, kernel_pad
from zoo.layers.kernel_pad import pad_kernel_bottom_right
from zoo.models._pretrained import build_variant, registry_default_cfgs, resnet_cfg

__all__ = ["KernelPaddedResNet", "checkpoint_filter_fn"]


class KernelPaddedResNet(ResNet):
    """timm ``ResNet`` whose odd-kernel, stride-2 convs (and max-pool) are even-kernel.

    Args:
        kernel_pad_pools: also make the stride-2 max-pool even (the paper's full fix; not
            function-preserving). Other arguments are timm ``ResNet``'s.
    """

    def __init__(self, *args, kernel_pad_pools: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        _, self.kernel_pad_report = kernel_pad(self, pools=kernel_pad_pools)
        # from scratch: every tap initialised (pretrained loading replaces them with the
        # checkpoint's zero-padded kernels)
        init_enlarged_kernels(self, self.kernel_pad_report)
        # whether a base-ResNet checkpoint converts into this model exactly (read at load time)
        self.pretrained_conversion_exact = self.kernel_pad_report.exact


def checkpoint_filter_fn(state_dict: dict, model: KernelPaddedResNet) -> dict:
    """Zero-pad (bottom/right) every conv kernel that the model enlarged by one."""
    targets = model.state_dict()
    out = {}
    for name, value in state_dict.items():
        target = targets.get(name)
        enlarged = (
            target is not None
            and value.ndim == 4
            and target.shape[:2] == value.shape[:2]
            and tuple(target.shape[2:]) == (value.shape[2] + 1, value.shape[3] + 1)
        )
        out[name] = pad_kernel_bottom_right(value) if enlarged else value
    return out


def _create_resnet_kp(variant: str, pretrained: bool = False, **kwargs) -> KernelPaddedResNet:
    return build_variant(
        KernelPaddedResNet,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        **kwargs,
    )


VARIANTS = ["resnet18_kp", "resnet34_kp", "resnet50_kp", "resnet101_kp", "resnext50_32x4d_kp"]
default_cfgs = generate_default_cfgs(registry_default_cfgs(VARIANTS, resnet_cfg))


@register_model
def resnet18_kp(pretrained: bool = False, **kwargs) -> KernelPaddedResNet:
    """ResNet-18 with kernel padding."""
    model_args = dict(block=BasicBlock, layers=(2, 2, 2, 2))
    return _create_resnet_kp("resnet18_kp", pretrained, **dict(model_args, **kwargs))


@register_model
def resnet34_kp(pretrained: bool = False, **kwargs) -> KernelPaddedResNet:
    """ResNet-34 with kernel padding."""
    model_args = dict(block=BasicBlock, layers=(3, 4, 6, 3))
    return _create_resnet_kp("resnet34_kp", pretrained, **dict(model_args, **kwargs))


@register_model
def resnet50_kp(pretrained: bool = False, **kwargs) -> KernelPaddedResNet:
    """ResNet-50 with kernel padding."""
    model_args = dict(block=Bottleneck, layers=(3, 4, 6, 3))
    return _create_resnet_kp("resnet50_kp", pretrained, **dict(model_args, **kwargs))


@register_model
def resnet101_kp(pretrained: bool = False, **kwargs) -> KernelPaddedResNet:
    """ResNet-101 with kernel padding."""
    model_args = dict(block=Bottleneck, layers=(3, 4, 23, 3))
    return _create_resnet_kp("resnet101_kp", pretrained, **dict(model_args, **kwargs))


@register_model
def resnext50_32x4d_kp(pretrained: bool = False, **kwargs) -> KernelPaddedResNet:
    """ResNeXt-50 32x4d with kernel padding."""
    model_args = dict(block=Bottleneck, layers=(3, 4, 6, 3), cardinality=32, base_width=4)
    return _create_resnet_kp("resnext50_32x4d_kp", pretrained, **dict(model_args, **kwargs))
