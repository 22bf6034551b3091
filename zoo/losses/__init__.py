"""Depth losses in plain PyTorch (paper A): the classic SILog as mmseg computes it, and the
NaN-safe one. The mmseg-registered modules wrap these (``zoo.mmseg``)."""

from zoo.losses.silog import (
    log_depth_from_logits,
    silog_loss_classic,
    stable_silog_loss,
    stable_silog_per_sample,
)

__all__ = [
    "log_depth_from_logits",
    "silog_loss_classic",
    "stable_silog_loss",
    "stable_silog_per_sample",
]
