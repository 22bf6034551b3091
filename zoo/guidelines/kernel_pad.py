"""Kernel padding (paper H): even kernels for every odd-kernel, even-stride conv and max-pool.

``kernel_pad(model)`` works on any PyTorch model (timm ResNets, ResNeXts, ...): it finds every
``nn.Conv2d`` and ``nn.MaxPool2d`` whose kernel is odd and stride even on both axes and swaps
it for ``zoo.layers.EvenKernelConv2d`` / ``EvenKernelMaxPool2d``. In timm's ResNet-50 that is
the 7x7/s2 stem (-> 8x8), the 3x3/s2 max-pool (-> 4x4), the 3x3/s2 convs of the first block of
layers 2-4 (-> 4x4) and their 1x1/s2 downsample convs (-> 2x2), as in the paper.

Converted convs compute exactly what they did, for every input size; converted pools do not
(``pools=False`` leaves them alone). Convolutions whose forward is not plain ``Conv2d`` (timm's
``StdConv2d`` weight standardisation, TF-"same" ``Conv2dSame``) would change under zero-padded
weights, so they are reported as skipped instead of converted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn
from torch.nn.modules.utils import _pair

from zoo._modules import replace_submodule
from zoo.layers.kernel_pad import EvenKernelConv2d, EvenKernelMaxPool2d


@dataclass(frozen=True)
class KernelPadChange:
    name: str
    kind: str  # "conv" or "max_pool"
    kernel: tuple[int, int]
    new_kernel: tuple[int, int]
    stride: tuple[int, int]
    exact: bool  # computes exactly what the original did


@dataclass
class KernelPadReport:
    changes: list[KernelPadChange] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)

    @property
    def exact(self) -> bool:
        """True when every change preserves the function (no pool was converted)."""
        return all(change.exact for change in self.changes)

    def __str__(self) -> str:
        lines = [f"kernel padding: {len(self.changes)} layer(s) changed"]
        width = max((len(name) for name in self.names()), default=0)
        for c in self.changes:
            effect = "exact" if c.exact else "changes the function"
            lines.append(
                f"  {c.name:<{width}}  {c.kind:<8} {c.kernel[0]}x{c.kernel[1]}/s{c.stride[0]}"
                f" -> {c.new_kernel[0]}x{c.new_kernel[1]}  ({effect})"
            )
        for name, why in self.skipped:
            lines.append(f"  {name:<{width}}  skipped: {why}")
        return "\n".join(lines)

    def names(self) -> list[str]:
        return [c.name for c in self.changes] + [name for name, _ in self.skipped]


def _odd_kernel_even_stride(kernel, stride) -> bool:
    kernel, stride = _pair(kernel), _pair(stride)
    return all(k % 2 == 1 for k in kernel) and all(s % 2 == 0 for s in stride)


def dead_pixel_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every conv / max-pool with an odd kernel at an even stride (the dead-pixel risk)."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.MaxPool2d)
        and _odd_kernel_even_stride(module.kernel_size, module.stride)
    ]


def kernel_pad(model: nn.Module, pools: bool = True) -> tuple[nn.Module, KernelPadReport]:
    """Make every odd-kernel, even-stride conv (and, with ``pools``, max-pool) even, in place.

    Args:
        model: any ``nn.Module``; its layers are replaced in place.
        pools: also convert max-pools (the paper does; the model then needs fine-tuning).

    Returns:
        ``(model, report)``; ``report.exact`` says whether the model still computes what it did.
    """
    if not isinstance(pools, bool):
        raise ValueError(f"pools must be True or False, got {pools!r}")
    report = KernelPadReport()
    for name, module in dead_pixel_layers(model):
        kernel, stride = _pair(module.kernel_size), _pair(module.stride)
        new_kernel = (kernel[0] + 1, kernel[1] + 1)
        if isinstance(module, nn.Conv2d):
            if type(module) is not nn.Conv2d:
                why = "is not a plain Conv2d; padding its kernel would change what it computes"
                report.skipped.append((name, f"{type(module).__name__} {why}"))
                continue
            replace_submodule(model, name, EvenKernelConv2d.from_odd(module))
            report.changes.append(KernelPadChange(name, "conv", kernel, new_kernel, stride, True))
        elif pools:
            if type(module) is not nn.MaxPool2d or module.return_indices:
                why = "returns indices" if module.return_indices else "not a plain MaxPool2d"
                report.skipped.append((name, f"{type(module).__name__} {why}"))
                continue
            replace_submodule(model, name, EvenKernelMaxPool2d.from_odd(module))
            report.changes.append(
                KernelPadChange(name, "max_pool", kernel, new_kernel, stride, False)
            )
    return model, report


def init_enlarged_kernels(model: nn.Module, report: KernelPadReport) -> nn.Module:
    """Initialise every conv that ``kernel_pad`` enlarged in full, as timm initialises ResNet
    convs (Kaiming normal, fan-out, ReLU gain), for a model trained from scratch.

    ``kernel_pad`` itself zero-pads so that trained weights keep their function; at random
    initialization those zero taps would keep the odd kernels' uneven pixel coverage.
    """
    for change in report.changes:
        if change.kind == "conv":
            weight = model.get_submodule(change.name).weight
            nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    return model
