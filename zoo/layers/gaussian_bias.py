"""Gaussian attention bias (paper C, arXiv 2305.04722).

Per layer, one learnable amplitude ``A`` and width ``sigma`` (in patch units), shared across
heads. Query patch ``i`` and key patch ``j`` at row/column offset ``(dy, dx)`` get::

    B_gauss[i, j] = A^2 * exp(-(dx^2 + dy^2) / (2 * sigma^2))

added to the attention logits on top of any relative position bias. The paper builds a
``(2H-1) x (2W-1)`` table over offsets and slices it per query; the Gaussian is separable, so
the same ``N x N`` matrix is ``A^2 * kron(G_y, G_x)`` with ``G_y[a, b] = exp(-(a-b)^2 / 2s^2)``
over rows and ``G_x`` over columns, for timm's row-major token order (``index = y * W + x``).
Prefix (class / register) tokens get zero bias in their rows and columns (our rule: the paper
has no class token).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GaussianAttentionBias(nn.Module):
    """Learnable Gaussian bias over patch offsets, shape ``(N, N)`` for ``N = prefix + H*W``.

    Args:
        num_prefix_tokens: tokens before the patch grid (class, register); they get zero bias.
        init_amplitude: initial ``A`` (the peak is ``A^2``); the paper uses 2.
        init_sigma: initial ``sigma`` in patches; the paper uses 5.
    """

    def __init__(
        self,
        num_prefix_tokens: int = 0,
        init_amplitude: float = 2.0,
        init_sigma: float = 5.0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if not isinstance(num_prefix_tokens, int) or num_prefix_tokens < 0:
            raise ValueError(f"num_prefix_tokens must be an int >= 0, got {num_prefix_tokens!r}")
        if not math.isfinite(init_amplitude):
            raise ValueError(f"init_amplitude must be a finite number, got {init_amplitude!r}")
        if not (math.isfinite(init_sigma) and init_sigma > 0):
            raise ValueError(f"init_sigma must be a finite number > 0, got {init_sigma!r}")
        self.num_prefix_tokens = num_prefix_tokens
        # sigma^2 is floored so that a collapsing sigma cannot produce 0/0 on the diagonal: the
        # bias then degrades to A^2 on the diagonal and 0 elsewhere instead of NaN.
        self.min_variance = 1e-6
        self.init_amplitude = float(init_amplitude)
        self.init_sigma = float(init_sigma)
        self.amplitude = nn.Parameter(torch.empty((), device=device, dtype=dtype))
        self.sigma = nn.Parameter(torch.empty((), device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.amplitude.fill_(self.init_amplitude)
            self.sigma.fill_(self.init_sigma)

    def _axis_kernel(self, size: int) -> torch.Tensor:
        position = torch.arange(size, device=self.sigma.device, dtype=self.sigma.dtype)
        squared_offset = (position[:, None] - position[None, :]).square()
        variance = self.sigma.square().clamp_min(self.min_variance)
        return torch.exp(-squared_offset / (2.0 * variance))

    def forward(self, grid_size: tuple[int, int]) -> torch.Tensor:
        """The ``(N, N)`` bias for a token grid of ``grid_size = (H, W)`` patches."""
        height, width = grid_size
        bias = self.amplitude.square() * torch.kron(
            self._axis_kernel(height), self._axis_kernel(width)
        )
        if self.num_prefix_tokens:
            bias = F.pad(bias, [self.num_prefix_tokens, 0, self.num_prefix_tokens, 0])
        return bias

    def extra_repr(self) -> str:
        return (
            f"num_prefix_tokens={self.num_prefix_tokens}, init_amplitude={self.init_amplitude}, "
            f"init_sigma={self.init_sigma}"
        )
