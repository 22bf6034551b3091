"""Drive a depth loss through the NaN failure cases of paper A (arXiv 2311.03938).

Each case builds logits (the leaf that receives the gradient), passes them through the head
(default: the classic ``max_depth * sigmoid(x)``) and calls ``loss_fn(head(logits), target)``;
the report says, per case and dtype, whether the loss and its gradient are finite and whether
the gradient vanished entirely (a clamp can turn a NaN into a silently dead pixel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

# (case, what it provokes in the classic loss)
CASES: dict[str, str] = {
    "perfect": "D = 0: the slope of sqrt(D) is infinite",
    "constant_scale": "d constant: zero variance (D = 0 when lambda = 1)",
    "one_valid_pixel": "one valid pixel per sample: no variance to speak of",
    "no_valid_pixel": "no valid pixel: 0/0",
    "saturated_logits": "logits of -120: sigmoid rounds to 0 and log(0) = -inf",
    "cancellation": "d ~ 9 +- 1e-6: one-pass mean(d^2) - mean(d)^2 cancels below 0",
}


@dataclass
class HazardResult:
    case: str
    dtype: str
    loss: float
    loss_finite: bool
    grad_finite: bool
    grad_zero: bool  # every logit's gradient exactly 0

    @property
    def safe(self) -> bool:
        return self.loss_finite and self.grad_finite


@dataclass
class StabilityReport:
    results: list[HazardResult]

    @property
    def hazards(self) -> list[HazardResult]:
        return [r for r in self.results if not r.safe]

    def table(self) -> str:
        rows = ["case              dtype     loss          loss ok  grad ok  grad all 0"]
        for r in self.results:
            rows.append(
                f"{r.case:<17} {r.dtype:<9} {r.loss:<13.6g} {r.loss_finite!s:<8} "
                f"{r.grad_finite!s:<8} {r.grad_zero}"
            )
        return "\n".join(rows)


def classic_sigmoid_head(max_depth: float) -> Callable[[Tensor], Tensor]:
    """Depth as many heads compute it: ``max_depth * sigmoid(x)``."""
    return lambda logits: max_depth * torch.sigmoid(logits)


def _case_tensors(case: str, shape: tuple[int, ...], max_depth: float, generator):
    """(depth the prediction should have, or None for explicit logits; logits; target), float64."""
    target = 1 + (max_depth / 2 - 1) * torch.rand(shape, generator=generator, dtype=torch.float64)
    pred = target * torch.exp(0.2 * torch.randn(shape, generator=generator, dtype=torch.float64))
    pred = pred.clamp(max=0.99 * max_depth)
    if case == "perfect":
        pred = target.clone()
    elif case == "constant_scale":
        pred = 0.5 * target
    elif case == "one_valid_pixel":
        keep = torch.zeros(shape, dtype=torch.bool)
        keep.view(shape[0], -1)[:, 0] = True
        target = torch.where(keep, target, torch.zeros_like(target))
    elif case == "no_valid_pixel":
        target = torch.zeros_like(target)
    elif case == "saturated_logits":
        return None, torch.full(shape, -120.0, dtype=torch.float64), target
    elif case == "cancellation":
        pred = torch.full(shape, 0.9 * max_depth, dtype=torch.float64)
        jitter = 1 + 1e-6 * torch.randn(shape, generator=generator, dtype=torch.float64)
        target = pred * math.exp(-9) * jitter
    else:
        raise ValueError(f"unknown case {case!r}; one of {', '.join(CASES)}")
    return pred, torch.logit(pred / max_depth), target


def classic_log_head(max_depth: float) -> Callable[[Tensor], Tensor]:
    """Log-depth as ``log(max_depth * sigmoid(x))``: ``-inf`` once ``sigmoid(x)`` rounds to 0."""
    return lambda logits: torch.log(max_depth * torch.sigmoid(logits))


def check_loss_stability(
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    head: Callable[[Tensor], Tensor] | None = None,
    *,
    head_output: str = "depth",
    max_depth: float = 10.0,
    cases: Sequence[str] | None = None,
    dtypes: Sequence[torch.dtype] = (torch.float32, torch.float16),
    shape: tuple[int, ...] = (2, 1, 8, 8),
    seed: int = 0,
) -> StabilityReport:
    """Run ``loss_fn(head(logits), target)`` and its backward through paper A's failure cases.

    Args:
        loss_fn: e.g. ``zoo.losses.silog_loss_classic`` or mmseg's ``SiLogLoss()``.
        head: maps logits to what ``loss_fn`` takes; default ``max_depth * sigmoid(x)``. For a
            loss on log-depth pass ``partial(log_depth_from_logits, max_depth=max_depth)``.
        head_output: ``'depth'`` or ``'log_depth'``, what ``head`` returns (the "perfect" case
            uses the prediction itself as the target, so that ``D`` is exactly 0).
        cases: a subset of ``CASES`` (default: all); dtypes: the precisions to try (half
            precision reaches the sigmoid underflow much sooner).
    """
    unknown = sorted(set(cases or ()) - set(CASES))
    if unknown:
        raise ValueError(f"cases: unknown {unknown}; choose from {', '.join(CASES)}")
    if head_output not in ("depth", "log_depth"):
        raise ValueError(f"head_output must be 'depth' or 'log_depth', got {head_output!r}")
    head = head or classic_sigmoid_head(max_depth)
    results = []
    for case in cases or list(CASES):
        generator = torch.Generator().manual_seed(seed)
        _, logits, target = _case_tensors(case, shape, max_depth, generator)
        for dtype in dtypes:
            leaf = logits.to(dtype).requires_grad_(True)
            prediction = head(leaf)
            if case == "perfect":  # the target is the prediction, to the last bit: D = 0
                target = prediction.detach().clone()
                target = target.exp() if head_output == "log_depth" else target
            loss = loss_fn(prediction, target.to(dtype))
            grad = torch.autograd.grad(loss, leaf, allow_unused=True)[0]
            if grad is None:
                grad = torch.zeros_like(leaf)
            results.append(
                HazardResult(
                    case=case,
                    dtype=str(dtype).removeprefix("torch."),
                    loss=float(loss.detach().double()),
                    loss_finite=bool(torch.isfinite(loss).all()),
                    grad_finite=bool(torch.isfinite(grad).all()),
                    grad_zero=bool((grad == 0).all()),
                )
            )
    return StabilityReport(results)
