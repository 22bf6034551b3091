"""Resolution-aware ASPP atrous rates (paper B, arXiv 2307.14179).

The paper finds that fixed ASPP rates limit the field of view and that the optimal rate
depends on the input size; its exact formula is not published in a source we could read. The
rule here is **ours**, derived from the geometry the paper's argument rests on (the
derivation and the measurements are in ``docs/mmseg.md``):

A 3x3 atrous conv at rate ``r`` reads the feature pixel it sits on and the ones ``r`` away.
Along an axis of ``F`` feature pixels, the tap at ``+r`` of position ``p`` lands inside iff
``p + r <= F - 1``, so of the ``3F`` taps of that axis ``F + 2 max(F - r, 0)`` land inside;
a 3x3 tap is inside iff both of its axis taps are, hence the fraction of a branch's taps that
read the feature map (not padding) is

    coverage(r) = (1 + 2 max(F_h - r, 0) / F_h) / 3  *  (1 + 2 max(F_w - r, 0) / F_w) / 3.

A branch whose ``2r + 1`` exceeds the map reads padding with its outer taps even at the
centre pixel, and once ``r >= F`` it is a 1x1 conv in disguise. So the largest rate is the
largest whose span fits the shorter side, ``r_max = (min(F_h, F_w) - 1) // 2`` (the centre
pixel's outer taps stay inside), and the others keep DeepLab's 1 : 2 : 3 spacing,
``r_k = round(k r_max / n)``. The feature size is ``F = ceil(crop / output_stride)`` (a
stride-s conv with "same" padding rounds up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DEFAULT_RATES = (12, 24, 36)  # mmseg's DeepLabV3 heads: dilations=(1, 12, 24, 36)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _crop_hw(crop_size) -> tuple[int, int]:
    if isinstance(crop_size, int) and not isinstance(crop_size, bool):
        crop_size = (crop_size, crop_size)
    if not isinstance(crop_size, Sequence) or len(crop_size) != 2:
        raise ValueError(
            f"crop_size must be an int or (height, width) of positive ints, got {crop_size!r}"
        )
    return (
        _positive_int(crop_size[0], "crop_size[0] (height)"),
        _positive_int(crop_size[1], "crop_size[1] (width)"),
    )


def feature_size(crop_size: int | Sequence[int], output_stride: int) -> tuple[int, int]:
    """``(F_h, F_w) = ceil(crop / output_stride)``, the map the ASPP head sees."""
    height, width = _crop_hw(crop_size)
    stride = _positive_int(output_stride, "output_stride")
    if min(height, width) < stride:
        raise ValueError(
            f"crop_size {(height, width)} is smaller than output_stride {stride}: the feature "
            "map would be under one pixel"
        )
    return math.ceil(height / stride), math.ceil(width / stride)


def tap_coverage(rate: int, feature_hw: tuple[int, int]) -> float:
    """Fraction of a 3x3 rate-``rate`` conv's taps, over all output positions, that land
    inside a ``feature_hw`` map (the rest read padding)."""
    rate = _positive_int(rate, "rate")
    fraction = 1.0
    for size in feature_hw:
        size = _positive_int(size, "feature size")
        fraction *= (1 + 2 * max(size - rate, 0) / size) / 3
    return fraction


def atrous_rates(
    crop_size: int | Sequence[int], output_stride: int = 8, num_rates: int = 3
) -> tuple[int, ...]:
    """Resolution-aware ASPP rates (ours; see the module docstring): the largest rate whose
    3x3 span ``2r + 1`` fits the shorter side of the feature map, the others spaced
    ``1 : 2 : ... : num_rates`` below it.

    Args:
        crop_size: training crop, ``int`` or ``(height, width)`` in input pixels.
        output_stride: input pixels per feature pixel at the ASPP head (8 for mmseg's
            ``*-d8`` ResNets, 16 for ``*-d16``; 1 for the U-Net configs, whose head runs at
            full resolution).
        num_rates: atrous branches (3 in DeepLabV3; mmseg's ``dilations`` add a 1x1 branch
            in front: ``(1, *atrous_rates(...))``).

    Returns:
        ``num_rates`` increasing rates (``>= 1``; on maps too small to space them, rates can
        repeat rather than reach past the map).

    >>> atrous_rates((512, 1024), output_stride=8)
    (10, 21, 31)
    """
    num_rates = _positive_int(num_rates, "num_rates")
    f_h, f_w = feature_size(crop_size, output_stride)
    largest = max((min(f_h, f_w) - 1) // 2, 1)
    return tuple(max(1, round(k * largest / num_rates)) for k in range(1, num_rates + 1))


def rate_report(
    crop_size: int | Sequence[int],
    output_stride: int = 8,
    rates: Sequence[int] | None = None,
) -> list[dict]:
    """Per branch: rate, its 3x3 span, whether the span fits the feature map, and the tap
    coverage; for ``rates`` (default: the derived ones)."""
    hw = feature_size(crop_size, output_stride)
    rates = atrous_rates(crop_size, output_stride) if rates is None else tuple(rates)
    return [
        {
            "rate": r,
            "span": 2 * r + 1,
            "feature_size": list(hw),
            "fits": 2 * r + 1 <= min(hw),
            "tap_coverage": tap_coverage(r, hw),
        }
        for r in rates
    ]
