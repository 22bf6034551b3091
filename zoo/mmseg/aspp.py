"""``ResolutionAwareASPPHead`` (paper B): mmseg's ASPPHead with rates from the crop size."""

from __future__ import annotations

from collections.abc import Sequence

from mmseg.models.decode_heads.aspp_head import ASPPHead
from mmseg.registry import MODELS

from zoo.guidelines.atrous import atrous_rates


@MODELS.register_module()
class ResolutionAwareASPPHead(ASPPHead):
    """DeepLabV3's ASPP head whose atrous rates follow the training resolution.

    Args:
        dilations: ``'auto'`` for ``(1, *atrous_rates(crop_size, output_stride))`` (the 1x1
            branch, then the resolution-aware rates; the rule is ours, derived from the
            geometry of paper B: see ``zoo.guidelines.atrous``), or explicit rates as for
            ``ASPPHead``.
        crop_size: training crop ``(height, width)`` (or an int); needed for ``'auto'``.
        output_stride: input pixels per pixel of the head's input feature map (8 for the
            ``*-d8`` ResNets, 1 for the U-Net configs); needed for ``'auto'``.
        **kwargs: as for ``ASPPHead`` (``in_channels``, ``channels``, ``num_classes``, ...).

    The rates in use are ``self.dilations``. Input: the backbone's feature maps; output:
    ``(N, num_classes, H/output_stride, W/output_stride)`` logits.
    """

    def __init__(
        self,
        dilations: str | Sequence[int] = "auto",
        crop_size: int | Sequence[int] | None = None,
        output_stride: int | None = None,
        **kwargs,
    ):
        if isinstance(dilations, str):
            if dilations != "auto":
                raise ValueError(f"dilations must be 'auto' or a tuple of ints, got {dilations!r}")
            if crop_size is None or output_stride is None:
                raise ValueError(
                    "dilations='auto' needs crop_size (the training crop, e.g. (512, 1024)) and "
                    f"output_stride (e.g. 8); got crop_size={crop_size!r}, "
                    f"output_stride={output_stride!r}"
                )
            dilations = (1, *atrous_rates(crop_size, output_stride))
        elif not (
            isinstance(dilations, Sequence)
            and dilations
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dilations)
        ):
            raise ValueError(f"dilations must be 'auto' or a tuple of ints >= 1, got {dilations!r}")
        self.crop_size = crop_size
        self.output_stride = output_stride
        super().__init__(dilations=tuple(dilations), **kwargs)
