"""Shared timing for the benchmarks: interleaved repeats, medians, ratios against a baseline.

Absolute times on these shared machines are noise; a ratio between two models measured in the
same run, interleaved so that both see the same machine load, is the number worth reading.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2):
    """Median wall time of each callable, measured round-robin ``repeats`` times."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def verdict(ratio: float, target: float) -> str:
    return "meets" if ratio <= target else "MISSES"
