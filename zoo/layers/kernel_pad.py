"""Even-kernel replacements for odd-kernel, even-stride convolutions and max-pools (paper H).

An odd kernel ``k`` at an even stride covers some input pixels with more taps than their
neighbours, which leaves a checkerboard of partially dead pixels in the effective receptive
field (arXiv 2108.13576). The fix is an even kernel ``k + 1``.

For a convolution the change is exact at conversion time: the ``k x k`` weights go to the
top-left of a ``(k+1) x (k+1)`` kernel whose last row and column are zero, and the input is
padded by ``p`` before and ``p + d`` after on each axis (``p`` the original padding, ``d`` the
dilation). The extra tap lands on the added zero and multiplies a zero weight, and the output
size is ``floor((n + 2p - d(k-1) - 1) / s) + 1`` as before, for every input size ``n``. After
fine-tuning, the extra taps learn and every pixel is covered evenly.

For a max-pool the same padding (with ``-inf``) keeps the output size, but the window really is
larger, so the function changes: fine-tune after converting one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}  # fmt: skip


def even_kernel_padding(padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, ...]:
    """``F.pad`` amounts (left, right, top, bottom) that keep the output size for kernel k+1."""
    (pad_h, pad_w), (dil_h, dil_w) = padding, dilation
    return (pad_w, pad_w + dil_w, pad_h, pad_h + dil_h)


class EvenKernelConv2d(nn.Conv2d):
    """A ``Conv2d`` with an even kernel and asymmetric padding, made from an odd one.

    Build it with :meth:`from_odd`; the parameter names are ``Conv2d``'s, so only the weight's
    spatial size differs from the original in a state dict.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        stride: tuple[int, int],
        source_padding: tuple[int, int],
        dilation: tuple[int, int] = (1, 1),
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0,
            dilation=dilation,
            groups=groups,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self.source_padding = tuple(source_padding)
        self.input_padding = even_kernel_padding(self.source_padding, self.dilation)
        self.input_padding_mode = _PAD_MODES[padding_mode]

    @classmethod
    def from_odd(cls, conv: nn.Conv2d) -> EvenKernelConv2d:
        """The exact even-kernel equivalent of ``conv`` (odd kernel, even stride)."""
        padding = (0, 0) if conv.padding == "valid" else conv.padding
        new = cls(
            conv.in_channels,
            conv.out_channels,
            kernel_size=(conv.kernel_size[0] + 1, conv.kernel_size[1] + 1),
            stride=conv.stride,
            source_padding=padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        with torch.no_grad():
            new.weight.copy_(pad_kernel_bottom_right(conv.weight))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        new.weight.requires_grad_(conv.weight.requires_grad)
        new.train(conv.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.input_padding, mode=self.input_padding_mode)
        return self._conv_forward(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, input_padding={self.input_padding}"


class EvenKernelMaxPool2d(nn.MaxPool2d):
    """A ``MaxPool2d`` whose odd window ``k`` (even stride) became ``k + 1``; same output size.

    Not function-preserving: the window is larger. ``-inf`` padding as ``MaxPool2d`` uses.
    """

    def __init__(
        self,
        kernel_size: tuple[int, int],
        stride: tuple[int, int],
        source_padding: tuple[int, int],
        dilation: tuple[int, int] = (1, 1),
        ceil_mode: bool = False,
    ):
        super().__init__(kernel_size, stride=stride, padding=0, dilation=dilation,
                         ceil_mode=ceil_mode)  # fmt: skip
        self.source_padding = tuple(source_padding)
        self.input_padding = even_kernel_padding(self.source_padding, tuple(dilation))

    @classmethod
    def from_odd(cls, pool: nn.MaxPool2d) -> EvenKernelMaxPool2d:
        kernel, stride, padding, dilation = (
            nn.modules.utils._pair(v)
            for v in (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
        )
        return cls(
            (kernel[0] + 1, kernel[1] + 1), stride, padding, dilation, ceil_mode=pool.ceil_mode
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.input_padding, value=float("-inf"))
        return F.max_pool2d(
            x, self.kernel_size, self.stride, 0, self.dilation, ceil_mode=self.ceil_mode
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, input_padding={self.input_padding}"


def pad_kernel_bottom_right(weight: torch.Tensor) -> torch.Tensor:
    """``(..., k, k)`` -> ``(..., k+1, k+1)`` with a zero last row and column."""
    return F.pad(weight, (0, 1, 0, 1))
