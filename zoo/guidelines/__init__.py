"""The guidelines as functions that work on any (timm) model, one module per paper."""

from zoo.guidelines.atrous import atrous_rates, tap_coverage
from zoo.guidelines.dropout import place_dropout
from zoo.guidelines.gamma_decay import classify_norms, gamma_decay_groups
from zoo.guidelines.gn_groups import gn_block_gain, gn_calibrate, ideal_groups, set_gn_groups
from zoo.guidelines.kernel_pad import KernelPadReport, dead_pixel_layers, kernel_pad

__all__ = [
    "KernelPadReport",
    "atrous_rates",
    "classify_norms",
    "dead_pixel_layers",
    "gamma_decay_groups",
    "gn_block_gain",
    "gn_calibrate",
    "ideal_groups",
    "kernel_pad",
    "place_dropout",
    "set_gn_groups",
    "tap_coverage",
]
