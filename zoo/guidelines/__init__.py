"""The guidelines as functions that work on any (timm) model, one module per paper."""

from zoo.guidelines.dropout import place_dropout
from zoo.guidelines.gamma_decay import classify_norms, gamma_decay_groups
from zoo.guidelines.kernel_pad import KernelPadReport, dead_pixel_layers, kernel_pad

__all__ = [
    "KernelPadReport",
    "classify_norms",
    "dead_pixel_layers",
    "gamma_decay_groups",
    "kernel_pad",
    "place_dropout",
]
