"""Scale-invariant log (SILog) depth losses (paper A, arXiv 2311.03938).

With ``d = log(pred) - log(gt)`` over the valid pixels of a sample,
``D = mean(d^2) - lambda * mean(d)^2``. The classic loss is ``sqrt(D)`` averaged over samples;
it has three NaN mechanisms (papers.md A): the infinite slope of ``sqrt`` at ``D = 0``,
``log(sigmoid(x))`` underflowing to ``-inf``, and the one-pass ``mean(d^2) - mean(d)^2``
turning slightly negative by cancellation. The stable loss keeps the same optimum and removes
each one: no square root by default, log-depth taken from logits with ``logsigmoid``, a
two-pass population variance clamped at zero, and samples with fewer than two valid pixels
masked explicitly. Every epsilon has one job and its own name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def silog_loss_classic(
    pred: Tensor, target: Tensor, lambd: float = 0.5, eps: float = 1e-4
) -> Tensor:
    """mmseg 1.2.2's ``silog_loss`` (mean reduction), with ``lambd`` exposed (mmseg fixes 0.5).

    One ``eps`` does three jobs: validity threshold (``target > eps``), log clamp and the
    denominator clamp. Kept as the reference the stable loss is checked against.
    """
    pred, target = pred.flatten(1), target.flatten(1)
    diff_log = torch.log(target.clamp(min=eps)) - torch.log(pred.clamp(min=eps))
    valid = (target > eps).detach() & ~torch.isnan(diff_log)
    diff_log = torch.where(valid, diff_log, torch.zeros_like(diff_log))
    valid = valid.to(diff_log.dtype)
    count = valid.sum(dim=1).clamp(min=eps)
    sq_mean = (diff_log.pow(2) * valid).sum(dim=1) / count
    mean = (diff_log * valid).sum(dim=1) / count
    return torch.sqrt(sq_mean - lambd * mean.pow(2)).mean()


def log_depth_from_logits(logits: Tensor, max_depth: float) -> Tensor:
    """``log(max_depth * sigmoid(x))`` computed as ``logsigmoid(x) + log(max_depth)``: exact
    for very negative ``x``, where ``sigmoid(x)`` rounds to 0 and its log to ``-inf``."""
    if not (math.isfinite(max_depth) and max_depth > 0):
        raise ValueError(f"max_depth must be a positive finite float, got {max_depth}")
    return F.logsigmoid(logits) + math.log(max_depth)


def stable_silog_loss(
    log_pred: Tensor,
    target: Tensor,
    *,
    lambd: float = 0.5,
    sqrt: bool = False,
    sqrt_eps: float = 1e-6,
    min_valid_depth: float = 1e-3,
    min_valid_pixels: int = 2,
) -> Tensor:
    """NaN-safe SILog on **log** predictions (e.g. :func:`log_depth_from_logits`), averaged
    over the samples that have at least ``min_valid_pixels`` valid pixels.

    Args:
        log_pred: predicted log-depth, (N, ...).
        target: ground-truth depth, same shape; pixels with ``target > min_valid_depth`` count.
        lambd: the scale-invariance weight, in [0, 1].
        sqrt: return ``sqrt(D + sqrt_eps)`` (``sqrt_eps`` keeps its slope finite at D = 0).
        min_valid_pixels: samples with fewer valid pixels are left out (a variance needs two);
            with none left the loss is 0 and its gradient is 0, never NaN.

    ``D = population_var(d) + (1 - lambd) * mean(d)^2`` per sample, the variance two-pass and
    clamped at zero; this equals ``mean(d^2) - lambd * mean(d)^2`` (population variance only).
    """
    per_sample, kept = stable_silog_per_sample(
        log_pred, target, lambd=lambd, sqrt=sqrt, sqrt_eps=sqrt_eps,
        min_valid_depth=min_valid_depth, min_valid_pixels=min_valid_pixels,
    )  # fmt: skip
    return per_sample.sum() / kept.sum().clamp(min=1)


def stable_silog_per_sample(
    log_pred: Tensor,
    target: Tensor,
    *,
    lambd: float = 0.5,
    sqrt: bool = False,
    sqrt_eps: float = 1e-6,
    min_valid_depth: float = 1e-3,
    min_valid_pixels: int = 2,
) -> tuple[Tensor, Tensor]:
    """``(per-sample loss (N,), kept (N,) bool)`` of :func:`stable_silog_loss`; samples left
    out (too few valid pixels) have loss 0 with gradient 0."""
    if not 0 <= lambd <= 1:
        raise ValueError(f"lambd must be in [0, 1], got {lambd}")
    if not min_valid_depth > 0:
        raise ValueError(f"min_valid_depth must be positive, got {min_valid_depth}")
    if sqrt_eps < 0 or (sqrt and sqrt_eps == 0):
        raise ValueError(f"sqrt_eps must be positive when sqrt=True, got {sqrt_eps}")
    if (
        isinstance(min_valid_pixels, bool)
        or not isinstance(min_valid_pixels, int)
        or min_valid_pixels < 2
    ):
        raise ValueError(f"min_valid_pixels must be an int >= 2, got {min_valid_pixels!r}")
    if log_pred.shape != target.shape:
        raise ValueError(
            f"log_pred {tuple(log_pred.shape)} and target {tuple(target.shape)} differ"
        )
    log_pred, target = log_pred.flatten(1), target.flatten(1)
    valid = target > min_valid_depth
    # log of a placeholder (1) where invalid: no log(0) anywhere, even in unused lanes
    log_target = torch.log(torch.where(valid, target, torch.ones_like(target)))
    d = torch.where(valid, log_pred - log_target, torch.zeros_like(log_pred))
    weight = valid.to(d.dtype)
    count = weight.sum(dim=1)
    kept = count >= min_valid_pixels
    safe_count = torch.where(kept, count, torch.ones_like(count))
    mean = (d * weight).sum(dim=1) / safe_count
    centred = (d - mean[:, None]) * weight
    variance = (centred.pow(2).sum(dim=1) / safe_count).clamp(min=0)
    per_sample = variance + (1 - lambd) * mean.pow(2)
    if sqrt:
        per_sample = torch.sqrt(per_sample + sqrt_eps)
    return torch.where(kept, per_sample, torch.zeros_like(per_sample)), kept
