"""Shared timing for the benchmarks: paired, order-alternating rounds; ratios, not seconds.

Absolute times on these shared machines are noise. Each round times the variant and its base
back to back (alternating which goes first), so both see the same machine load, and the round's
ratio is kept; the median of those ratios is the number worth reading, the quartiles say how
much to trust it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RatioEstimate:
    median: float
    q1: float
    q3: float
    variant_seconds: float
    base_seconds: float

    def __str__(self) -> str:
        return f"{self.median:.3f} (IQR {self.q1:.3f}-{self.q3:.3f})"


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_ratio(
    variant: Callable[[], object], base: Callable[[], object], rounds: int, warmup: int = 2
) -> RatioEstimate:
    """Median over ``rounds`` of time(variant) / time(base), measured back to back."""
    for _ in range(warmup):
        variant()
        base()
    ratios, variant_times, base_times = [], [], []
    for i in range(rounds):
        if i % 2:
            b, v = _seconds(base), _seconds(variant)
        else:
            v, b = _seconds(variant), _seconds(base)
        ratios.append(v / b)
        variant_times.append(v)
        base_times.append(b)
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    return RatioEstimate(
        median=statistics.median(ratios),
        q1=q1,
        q3=q3,
        variant_seconds=statistics.median(variant_times),
        base_seconds=statistics.median(base_times),
    )


def relative_times(
    steps: dict[str, Callable[[], object]], base: str, rounds: int, warmup: int = 1
) -> dict[str, RatioEstimate]:
    """Like :func:`paired_ratio` for several steps at once: each round times every step back
    to back (the order rotating from round to round) and keeps each one's ratio to ``base``."""
    if base not in steps:
        raise ValueError(f"base must be one of {sorted(steps)}, got {base!r}")
    names = list(steps)
    for _ in range(warmup):
        for step in steps.values():
            step()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            seconds[name].append(_seconds(steps[name]))
    estimates = {}
    for name in names:
        ratios = [v / b for v, b in zip(seconds[name], seconds[base], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        estimates[name] = RatioEstimate(
            median=statistics.median(ratios),
            q1=q1,
            q3=q3,
            variant_seconds=statistics.median(seconds[name]),
            base_seconds=statistics.median(seconds[base]),
        )
    return estimates


def verdict(ratio: float, target: float) -> str:
    return "meets" if ratio <= target else "MISSES"


def eval_step(model, x):
    def run():
        with torch.no_grad():
            model(x)

    return run


def train_step(model, x):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    target = torch.zeros(x.shape[0], dtype=torch.long)

    def run():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), target).backward()
        optimizer.step()

    return run


def mode_ratios(variant, base, x: torch.Tensor, rounds: int):
    """``(mode, RatioEstimate)`` for an inference forward and a training step, in that order."""
    for mode, make_step in (("eval", eval_step), ("train", train_step)):
        variant.train(mode == "train")
        base.train(mode == "train")
        yield mode, paired_ratio(make_step(variant, x), make_step(base, x), rounds=rounds)
