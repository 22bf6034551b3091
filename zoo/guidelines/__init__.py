"""The guidelines as functions that work on any (timm) model, one module per paper."""

from zoo.guidelines.dropout import place_dropout
from zoo.guidelines.kernel_pad import KernelPadReport, dead_pixel_layers, kernel_pad

__all__ = ["KernelPadReport", "dead_pixel_layers", "kernel_pad", "place_dropout"]
