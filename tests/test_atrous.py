"""Resolution-aware atrous rates (paper B): the derived rule and its geometry."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from zoo.cli import main
from zoo.guidelines.atrous import (
    DEFAULT_RATES,
    atrous_rates,
    feature_size,
    rate_report,
    tap_coverage,
)


def measured_coverage(rate, height, width):
    """Count, per output position, the 3x3 taps at ``rate`` that read the map (a conv of
    ones over a map of ones with zero padding), averaged: independent of the formula."""
    ones = torch.ones(1, 1, height, width, dtype=torch.float64)
    kernel = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    inside = F.conv2d(ones, kernel, padding=rate, dilation=rate)
    return inside.mean().item() / 9


@pytest.mark.parametrize(
    ("rate", "hw"),
    [(1, (8, 8)), (12, (64, 128)), (36, (64, 128)), (31, (64, 128)), (70, (64, 128)), (5, (7, 3))],
)
def test_tap_coverage_matches_a_measurement(rate, hw):
    assert tap_coverage(rate, hw) == pytest.approx(measured_coverage(rate, *hw), abs=1e-12)


def test_derived_rates_for_the_papers_settings():
    # mmseg's configs: U-Net heads at full resolution, DeepLabV3 at output stride 8
    assert atrous_rates((128, 128), output_stride=1) == (21, 42, 63)
    assert atrous_rates((256, 256), output_stride=1) == (42, 85, 127)
    assert atrous_rates((512, 1024), output_stride=8) == (10, 21, 31)
    assert atrous_rates((896, 896), output_stride=8) == (18, 37, 55)
    assert atrous_rates(512, output_stride=16, num_rates=4) == (4, 8, 11, 15)


def test_largest_rate_spans_the_shorter_side_and_no_larger_one_does():
    for crop, stride in [((512, 1024), 8), ((128, 128), 1), ((769, 769), 8), ((100, 60), 4)]:
        hw = feature_size(crop, stride)
        largest = atrous_rates(crop, stride)[-1]
        assert 2 * largest + 1 <= min(hw)
        assert 2 * (largest + 1) + 1 > min(hw)


def test_default_rates_read_padding_where_the_derived_do_not():
    """Cityscapes at output stride 8: mmseg's rate 36 spans 73 > 64 rows."""
    default = rate_report((512, 1024), 8, DEFAULT_RATES)
    derived = rate_report((512, 1024), 8)
    assert [r["fits"] for r in default] == [True, True, False]
    assert all(r["fits"] for r in derived)
    assert derived[-1]["tap_coverage"] > default[-1]["tap_coverage"]


@given(
    height=st.integers(1, 2048),
    width=st.integers(1, 2048),
    stride=st.sampled_from([1, 2, 4, 8, 16, 32]),
    num_rates=st.integers(1, 6),
)
def test_rates_are_valid_for_any_valid_crop(height, width, stride, num_rates):
    if min(height, width) < stride:
        with pytest.raises(ValueError, match="output_stride"):
            atrous_rates((height, width), stride, num_rates)
        return
    rates = atrous_rates((height, width), stride, num_rates)
    assert len(rates) == num_rates
    assert all(r >= 1 for r in rates)
    assert list(rates) == sorted(rates)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"crop_size": (4, 4), "output_stride": 8}, "output_stride"),
        ({"crop_size": (0, 512), "output_stride": 8}, r"crop_size\[0\]"),
        ({"crop_size": (512, -3), "output_stride": 8}, r"crop_size\[1\]"),
        ({"crop_size": (512, 512, 3), "output_stride": 8}, "crop_size"),
        ({"crop_size": (512, 512), "output_stride": 0}, "output_stride"),
        ({"crop_size": (512, 512), "output_stride": True}, "output_stride"),
        ({"crop_size": (512, 512), "num_rates": 0}, "num_rates"),
    ],
)
def test_bad_input_names_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        atrous_rates(**kwargs)


def test_cli_prints_both_rate_sets_with_tap_fractions(capsys):
    assert main(["atrous-rates", "--crop", "512", "1024", "--output-stride", "8"]) == 0
    out = capsys.readouterr().out
    assert "feature map 64x128" in out
    assert "mmseg dilations: (1, 10, 21, 31)" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("derived", "default"))]
    assert [(r[0], int(r[1])) for r in rows] == [
        ("derived", 10), ("derived", 21), ("derived", 31),
        ("default", 12), ("default", 24), ("default", 36),
    ]  # fmt: skip
    assert float(rows[5][4]) == pytest.approx(measured_coverage(36, 64, 128), abs=5e-4)
    with pytest.raises(SystemExit, match="output_stride"):
        main(["atrous-rates", "--crop", "4", "--output-stride", "8"])
    with pytest.raises(SystemExit, match="crop_size"):  # three numbers: not silently one
        main(["atrous-rates", "--crop", "512", "1024", "3"])
    assert main(["atrous-rates", "--crop", "512"]) == 0
    assert "crop 512x512" in capsys.readouterr().out
