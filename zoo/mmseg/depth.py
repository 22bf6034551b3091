"""NaN-safe depth estimation for mmseg (paper A, arXiv 2311.03938).

``StableSiLogLoss`` is a drop-in for mmseg's ``SiLogLoss``; ``StableDepthHead`` predicts
log-depth as ``logsigmoid(x) + log(max_depth)`` and hands it to the loss directly, so no
``log(sigmoid(x))`` is ever taken. The arithmetic lives in :mod:`zoo.losses` (plain PyTorch).
"""

from __future__ import annotations

import math

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from zoo.losses import log_depth_from_logits, stable_silog_per_sample

PRED_SPACES = ("depth", "log_depth")
REDUCTIONS = ("none", "mean", "sum")


@MODELS.register_module()
class StableSiLogLoss(nn.Module):
    """Scale-invariant log loss without its NaN mechanisms (drop-in for mmseg's ``SiLogLoss``).

    ``D = population_var(d) + (1 - lambd) mean(d)^2`` per sample over the valid pixels, with
    ``d = log(pred) - log(gt)``; this equals mmseg's ``mean(d^2) - 0.5 mean(d)^2`` for
    ``lambd=0.5`` (mmseg then takes ``sqrt``). No square root by default (its slope is infinite
    at ``D = 0``); the variance is two-pass and clamped at zero; samples with fewer than
    ``min_valid_pixels`` valid pixels are left out explicitly.

    Args:
        reduction, loss_weight, loss_name: as for ``SiLogLoss``. ``'mean'`` averages over the
            samples kept (those with enough valid pixels); none kept gives 0, gradient 0.
        eps: ``SiLogLoss``'s argument, accepted for drop-in use; here it has one job, the
            validity threshold (an alias of ``min_valid_depth``).
        lambd: scale-invariance weight in [0, 1] (mmseg fixes 0.5).
        sqrt: return ``sqrt(D + sqrt_eps)`` per sample, eps inside the root.
        sqrt_eps: keeps the root's slope finite at ``D = 0``; used only with ``sqrt``.
        min_valid_depth: ground-truth pixels with depth above it count.
        min_valid_pixels: fewer valid pixels than this (>= 2: a variance needs two) and the
            sample is left out.
        pred_space: ``'depth'`` (like ``SiLogLoss``: positive depths, logged after clamping
            at ``min_pred_depth``; the clamp zeroes the gradient below it) or ``'log_depth'``
            (log-depth from a head such as ``StableDepthHead``: no log, no clamp).
        min_pred_depth: the clamp of ``'depth'`` predictions before their log.
    """

    def __init__(
        self,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        eps: float | None = None,
        loss_name: str = "loss_silog",
        *,
        lambd: float = 0.5,
        sqrt: bool = False,
        sqrt_eps: float = 1e-6,
        min_valid_depth: float = 1e-3,
        min_valid_pixels: int = 2,
        pred_space: str = "depth",
        min_pred_depth: float = 1e-6,
    ):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if pred_space not in PRED_SPACES:
            raise ValueError(f"pred_space must be one of {PRED_SPACES}, got {pred_space!r}")
        if not (isinstance(min_pred_depth, int | float) and min_pred_depth > 0):
            raise ValueError(f"min_pred_depth must be a positive number, got {min_pred_depth!r}")
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.pred_space = pred_space
        self.min_pred_depth = float(min_pred_depth)
        self._loss_name = loss_name
        self.options = dict(
            lambd=lambd,
            sqrt=sqrt,
            sqrt_eps=sqrt_eps,
            min_valid_depth=min_valid_depth if eps is None else eps,
            min_valid_pixels=min_valid_pixels,
        )
        # validate the options once, here, rather than at the first training step
        stable_silog_per_sample(torch.zeros(1, 2), torch.ones(1, 2), **self.options)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        reduction = reduction_override or self.reduction
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction_override must be one of {REDUCTIONS}, got {reduction!r}")
        log_pred = pred if self.pred_space == "log_depth" else pred.clamp(self.min_pred_depth).log()
        per_sample, kept = stable_silog_per_sample(log_pred, target, **self.options)
        if weight is not None:
            per_sample = per_sample * weight.to(per_sample.dtype).reshape(per_sample.shape)
        if reduction == "none":
            loss = per_sample
        elif reduction == "sum":
            loss = per_sample.sum()
        else:
            divisor = avg_factor if avg_factor is not None else kept.sum().clamp(min=1)
            loss = per_sample.sum() / divisor
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name


@MODELS.register_module()
class StableDepthHead(BaseDecodeHead):
    """A depth decode head that never takes ``log(sigmoid(x))``.

    ``num_convs`` ConvModules (``channels`` wide) on the selected feature map, then a 1x1 conv
    to one logit per pixel; the head's output is **log-depth**
    ``logsigmoid(x) + log(max_depth)`` (exact where ``sigmoid(x)`` underflows). Losses whose
    ``pred_space`` is ``'log_depth'`` receive it as is; others receive ``exp`` of it, i.e.
    ``max_depth * sigmoid(x)``. ``predict`` returns depth, as mmseg's ``DepthEstimator``
    expects.

    Args:
        max_depth: the largest depth the head can predict (metres for NYU: 10).
        num_convs: conv layers before the prediction (>= 0).
        kernel_size: of those convs.
        **kwargs: as for ``BaseDecodeHead`` (``in_channels``, ``channels``, ``in_index``,
            ``norm_cfg``, ``align_corners``, ``loss_decode``, ...); ``num_classes`` is 1.

    Shapes: features ``(N, in_channels, h, w)`` -> log-depth ``(N, 1, h, w)``.
    """

    def __init__(
        self,
        max_depth: float = 10.0,
        num_convs: int = 2,
        kernel_size: int = 3,
        loss_decode=None,
        **kwargs,
    ):
        if not (isinstance(max_depth, int | float) and math.isfinite(max_depth) and max_depth > 0):
            raise ValueError(f"max_depth must be a positive finite number, got {max_depth!r}")
        if isinstance(num_convs, bool) or not isinstance(num_convs, int) or num_convs < 0:
            raise ValueError(f"num_convs must be an int >= 0, got {num_convs!r}")
        if kwargs.pop("num_classes", 1) != 1:
            raise ValueError("num_classes of a depth head is 1")
        if loss_decode is None:
            loss_decode = dict(type="StableSiLogLoss", pred_space="log_depth")
        # threshold is a segmentation notion; given so BaseDecodeHead does not warn about it
        super().__init__(
            num_classes=1, out_channels=1, threshold=0.5, loss_decode=loss_decode, **kwargs
        )
        self.max_depth = float(max_depth)
        in_channels = self.in_channels if isinstance(self.in_channels, int) else sum(
            self.in_channels
        )  # fmt: skip
        self.convs = nn.Sequential(
            *(
                ConvModule(
                    in_channels if i == 0 else self.channels,
                    self.channels,
                    kernel_size,
                    padding=kernel_size // 2,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg,
                )
                for i in range(num_convs)
            )
        )
        if num_convs == 0 and in_channels != self.channels:
            raise ValueError(
                f"num_convs=0 needs channels == in_channels, got {self.channels} != {in_channels}"
            )

    def forward(self, inputs) -> Tensor:
        x = self.convs(self._transform_inputs(inputs))
        return log_depth_from_logits(self.cls_seg(x), self.max_depth)

    def _losses(self) -> list[nn.Module]:
        losses = self.loss_decode
        return list(losses) if isinstance(losses, nn.ModuleList) else [losses]

    def loss_by_feat(self, log_depth: Tensor, batch_data_samples) -> dict[str, Tensor]:
        gt = torch.stack([s.gt_depth_map.data for s in batch_data_samples]).to(log_depth.dtype)
        log_depth = resize(
            log_depth, size=gt.shape[2:], mode="bilinear", align_corners=self.align_corners
        )
        losses: dict[str, Tensor] = {}
        for loss in self._losses():
            pred = log_depth if getattr(loss, "pred_space", "depth") == "log_depth" else (
                log_depth.exp()
            )  # fmt: skip
            value = loss(pred, gt)
            losses[loss.loss_name] = losses.get(loss.loss_name, 0) + value
        return losses

    def predict_by_feat(self, log_depth: Tensor, batch_img_metas) -> Tensor:
        return super().predict_by_feat(log_depth, batch_img_metas).exp()
