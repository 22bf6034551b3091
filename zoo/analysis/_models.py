"""How the analysis commands build a model by name."""

from __future__ import annotations

import timm
import torch
from torch import nn

import zoo.models  # noqa: F401  (registers the variants)

RANDOM_WEIGHTS_NOTE = (
    "random weights with residual branches active (zero_init_last=False where the model has "
    "it: timm zero-initialises the last norm of each branch, which silences every branch at "
    "init and leaves only the shortcuts)"
)


def analysis_model(name: str, pretrained: bool = False, seed: int = 0) -> nn.Module:
    """``timm.create_model(name)`` in eval mode. Random weights are seeded and keep every
    residual branch active, so the ERF shows the architecture rather than timm's choice to
    start each branch at zero (``RANDOM_WEIGHTS_NOTE``)."""
    torch.manual_seed(seed)
    if pretrained:
        return timm.create_model(name, pretrained=True).eval()
    try:
        return timm.create_model(name, zero_init_last=False).eval()
    except TypeError:  # the model has no zero_init_last argument
        torch.manual_seed(seed)
        return timm.create_model(name).eval()
