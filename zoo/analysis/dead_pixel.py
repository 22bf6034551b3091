"""The dead pixel test (paper H, arXiv 2108.13576) and its fix side by side.

The output ERF (the ERF of the model's final output) shows which input pixels the output
barely depends on. Per pixel we compare it with its neighbourhood: ``sensitivity = ERF / mean
of the 3x3 neighbourhood``; a pixel is **weak** when it contributes less than half of what its
neighbourhood does on average (``sensitivity < 0.5``; our threshold, see docs/analysis.md),
counted inside the ERF's core (neighbourhood mean at least 10 % of the largest). The
one-pixel perturbation test then asks what that means for the output: add a small value to
one pixel (all colour channels) and measure how far the output moves, for the weakest and
for the strongest pixels near the centre.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.analysis.erf import ERFResult, erf, resolve_images
from zoo.guidelines.kernel_pad import init_enlarged_kernels, kernel_pad

WEAK_THRESHOLD = 0.5
CORE_FRACTION = 0.1


@dataclass
class DeadPixelReport:
    name: str
    erf: ERFResult
    sensitivity: torch.Tensor  # (H, W): ERF / 3x3-neighbourhood mean
    core: torch.Tensor  # (H, W) bool: where weak pixels are counted
    weak_fraction: float
    output_change: dict[str, float]  # one-pixel perturbation: mean |dy| on weak / strong pixels

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.name,
            **self.erf.summary(),
            "weak_threshold": WEAK_THRESHOLD,
            "weak_fraction": self.weak_fraction,
            "perturbation_weak": self.output_change["weak"],
            "perturbation_strong": self.output_change["strong"],
            "perturbation_weak_over_strong": self.output_change["weak_over_strong"],
        }


def local_sensitivity(erf_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ERF / mean of its 3x3 neighbourhood, core mask where that mean is >= 10 % of its max)."""
    padded = F.pad(erf_map[None, None].double(), (1, 1, 1, 1), mode="replicate")
    neighbourhood = F.avg_pool2d(padded, 3, stride=1)[0, 0]
    core = neighbourhood >= CORE_FRACTION * neighbourhood.max()
    sensitivity = torch.where(
        neighbourhood > 0, erf_map / neighbourhood, torch.zeros_like(neighbourhood)
    )
    return sensitivity, core


def _central_pixels(scores: torch.Tensor, core: torch.Tensor, count: int, weakest: bool):
    """``count`` pixels of the core with the lowest (or highest) score, taken from the
    central quarter of the image (the ERF's body, away from padding effects)."""
    height, width = scores.shape
    central = torch.zeros_like(core)
    central[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = True
    candidates = (core & central).nonzero()
    values = scores[candidates[:, 0], candidates[:, 1]]
    order = values.argsort(descending=not weakest)[:count]
    return [tuple(p) for p in candidates[order].tolist()]


@torch.no_grad()
def one_pixel_output_change(
    model: nn.Module, x: torch.Tensor, pixels: list[tuple[int, int]], delta: float
) -> float:
    """Mean over pixels and images of ``||f(x + delta e_p) - f(x)||`` (all channels of pixel
    ``p`` moved by ``delta``)."""
    reference = model(x)
    changes = []
    for row, col in pixels:
        moved = x.clone()
        moved[:, :, row, col] += delta
        changes.append((model(moved) - reference).flatten(1).norm(dim=1).mean())
    return torch.stack(changes).mean().item()


def dead_pixel_test(
    model: nn.Module,
    images: torch.Tensor | str | Path | None = None,
    *,
    name: str = "model",
    num_images: int = 8,
    input_size: tuple[int, int, int] | None = None,
    seed: int = 0,
    pixels: int = 16,
    delta: float = 1.0,
    progress: bool = False,
) -> DeadPixelReport:
    """Output ERF, weak-pixel fraction and the one-pixel perturbation test for ``model``.

    ``images``, ``num_images``, ``input_size``, ``seed``: as for :func:`zoo.analysis.erf.erf`.
    ``pixels``: how many weakest and strongest central pixels to perturb; ``delta``: the
    perturbation, in the model's (normalized) input units.
    """
    x = resolve_images(model, images, num_images, input_size, seed)
    result = erf(model, x, "output", batch_size=len(x), progress=progress)
    sensitivity, core = local_sensitivity(result.map)
    weak_fraction = (sensitivity[core] < WEAK_THRESHOLD).double().mean().item()
    was_training = model.training
    model.eval()
    try:
        weak = one_pixel_output_change(
            model, x, _central_pixels(sensitivity, core, pixels, weakest=True), delta
        )
        strong = one_pixel_output_change(
            model, x, _central_pixels(sensitivity, core, pixels, weakest=False), delta
        )
    finally:
        model.train(was_training)
    change = {"weak": weak, "strong": strong, "weak_over_strong": weak / strong if strong else 0.0}
    return DeadPixelReport(name, result, sensitivity, core, weak_fraction, change)


def kernel_padded_counterpart(model: nn.Module, *, trained: bool) -> nn.Module:
    """A kernel-padded copy of ``model`` (pools included, as the paper does).

    ``trained=True``: the enlarged kernels are the zero-padded trained ones (what converting a
    checkpoint gives before fine-tuning: the convs compute what they did, only the pools
    change). ``trained=False`` (random weights): the enlarged kernels are initialised in full,
    as a model built with even kernels would be.
    """
    padded, report = kernel_pad(copy.deepcopy(model), pools=True)
    if not trained:
        init_enlarged_kernels(padded, report)
    return padded


def dead_pixel_comparison(
    model: nn.Module, *, trained: bool, name: str = "model", **kwargs: Any
) -> tuple[DeadPixelReport, DeadPixelReport]:
    """:func:`dead_pixel_test` of ``model`` and of its kernel-padded counterpart, on the same
    images."""
    base = dead_pixel_test(model, name=name, **kwargs)
    padded = kernel_padded_counterpart(model, trained=trained)
    return base, dead_pixel_test(padded, name=f"kernel_pad({name})", **kwargs)
