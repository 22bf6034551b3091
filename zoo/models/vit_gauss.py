"""Vision Transformers with a Gaussian attention bias (paper C, arXiv 2305.04722).

The paper's base models are timm's ``vit_relpos_{small,medium,base}_patch16_224`` (RelPosMlp
relative position bias, no absolute position embedding, no class token). Each attention layer
adds ``B_gauss = A^2 exp(-(dx^2 + dy^2) / 2 sigma^2)`` (``zoo.layers.GaussianAttentionBias``,
one learnable ``A``, ``sigma`` per layer, shared across heads, init 2 and 5) to the logits on
top of the relative position bias::

    Attention = softmax(Q K^T / sqrt(d) + B_rel + B_gauss) V

At inference (eval mode, autograd off) the sum ``B_rel + B_gauss`` depends on no input, so each
layer computes it once and reuses it; the cache is keyed on the token grid and on the identity,
version, device and dtype of every parameter it depends on, so an optimizer step,
``load_state_dict``, ``.to()`` or a new input size all recompute it. (In-place edits through
``param.data`` bypass PyTorch's version counters, as they bypass autograd: call
``clear_attn_bias_cache()`` after those.) In training the bias is recomputed every step, so
gradients reach ``A`` and ``sigma`` (and the RelPosMlp, whose dropout makes it stochastic).

Pretrained tags initialise from the base architecture's timm checkpoint: every weight maps
one-to-one and ``A``, ``sigma`` start at their init values. The function changes, so these are
init-only weights (fine-tune before use), and loading them warns.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import DropPath, LayerScale, Mlp, PatchEmbed
from timm.models import register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs
from timm.models.vision_transformer_relpos import (
    RelPosAttention,
    VisionTransformerRelPos,
)
from timm.models.vision_transformer_relpos import (
    checkpoint_filter_fn as relpos_checkpoint_filter_fn,
)
from torch import nn

from zoo.layers.gaussian_bias import GaussianAttentionBias
from zoo.models._pretrained import build_variant, registry_default_cfgs, vit_cfg

__all__ = ["GaussRelPosAttention", "GaussRelPosBlock", "VisionTransformerGauss"]


class GaussRelPosAttention(RelPosAttention):
    """timm's ``RelPosAttention`` plus a Gaussian attention bias, with an inference cache."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        num_prefix_tokens: int = 0,
        gauss_amplitude: float = 2.0,
        gauss_sigma: float = 5.0,
        **kwargs,
    ):
        super().__init__(dim, num_heads=num_heads, **kwargs)
        if self.rel_pos is None:
            raise ValueError("GaussRelPosAttention needs rel_pos_cls (a per-layer RelPosMlp)")
        dd = {"device": self.qkv.weight.device, "dtype": self.qkv.weight.dtype}
        self.gauss_bias = GaussianAttentionBias(
            num_prefix_tokens, init_amplitude=gauss_amplitude, init_sigma=gauss_sigma, **dd
        )
        self._bias_cache: torch.Tensor | None = None
        self._bias_cache_key: tuple | None = None

    def compute_attn_bias(self, grid_size: tuple[int, int]) -> torch.Tensor:
        """``B_rel + B_gauss`` for a token grid, shape ``(1, heads, N, N)``."""
        if not torch.jit.is_scripting() and tuple(grid_size) != tuple(self.rel_pos.window_size):
            # dynamic image sizes: timm's own resize of the relative-position tables
            self.rel_pos.set_window_size(grid_size)
        return self.rel_pos.get_bias() + self.gauss_bias(grid_size)

    @torch.jit.unused
    def _cache_key(self, grid_size: tuple[int, int]) -> tuple:
        params = [*self.rel_pos.parameters(), *self.gauss_bias.parameters()]
        state = tuple((p.device, p.dtype, p.data_ptr(), p._version) for p in params)
        return (tuple(grid_size), state)

    @torch.jit.unused
    def _cached_attn_bias(self, grid_size: tuple[int, int]) -> torch.Tensor:
        key = self._cache_key(grid_size)
        if self._bias_cache is None or key != self._bias_cache_key:
            self._bias_cache = self.compute_attn_bias(grid_size)
            # set_window_size may have replaced buffers; the key is over parameters only
            self._bias_cache_key = key
        return self._bias_cache

    def clear_attn_bias_cache(self) -> None:
        self._bias_cache = None
        self._bias_cache_key = None

    def attn_bias(self, grid_size: tuple[int, int]) -> torch.Tensor:
        inference = not self.training and not torch.is_grad_enabled()
        if inference and not torch.jit.is_scripting():
            return self._cached_attn_bias(grid_size)
        return self.compute_attn_bias(grid_size)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = self.q_norm(q)
        k = self.k_norm(k)
        bias = self.attn_bias(grid_size).to(q.dtype)

        if self.fused_attn:
            x = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=self.attn_drop.p if self.training else 0.0
            )
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1) + bias
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = attn @ v

        x = x.transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


class GaussRelPosBlock(nn.Module):
    """timm's ``RelPosBlock`` (pre-norm, layer scale) around :class:`GaussRelPosAttention`.

    Parameter names match ``RelPosBlock`` so timm's RelPos checkpoints load one-to-one.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
        qk_norm: bool = False,
        rel_pos_cls=None,
        init_values: float | None = None,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        act_layer=nn.GELU,
        norm_layer=nn.LayerNorm,
        num_prefix_tokens: int = 0,
        gauss_amplitude: float = 2.0,
        gauss_sigma: float = 5.0,
        device=None,
        dtype=None,
    ):
        dd = {"device": device, "dtype": dtype}
        super().__init__()
        self.norm1 = norm_layer(dim, **dd)
        self.attn = GaussRelPosAttention(
            dim,
            num_heads,
            num_prefix_tokens=num_prefix_tokens,
            gauss_amplitude=gauss_amplitude,
            gauss_sigma=gauss_sigma,
            qkv_bias=qkv_bias,
            qk_norm=qk_norm,
            rel_pos_cls=rel_pos_cls,
            attn_drop=attn_drop,
            proj_drop=proj_drop,
            norm_layer=norm_layer,
            **dd,
        )
        self.ls1 = LayerScale(dim, init_values=init_values, **dd) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim, **dd)
        self.mlp = Mlp(
            in_features=dim,
            hidden_features=int(dim * mlp_ratio),
            act_layer=act_layer,
            drop=proj_drop,
            **dd,
        )
        self.ls2 = LayerScale(dim, init_values=init_values, **dd) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), grid_size)))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x


class VisionTransformerGauss(VisionTransformerRelPos):
    """timm's ``VisionTransformerRelPos`` with a Gaussian attention bias in every block.

    Adds to the base arguments:
        gauss_amplitude: initial ``A`` of every layer (paper: 2).
        gauss_sigma: initial ``sigma`` of every layer, in patches (paper: 5).
        dynamic_img_size: accept any input size; the token grid (and both biases) follow it.
        dynamic_img_pad: pad inputs to a multiple of the patch size instead of refusing them.

    ``shared_rel_pos`` is not supported (the paper's models use one RelPosMlp per layer).
    """

    def __init__(
        self,
        *,
        gauss_amplitude: float = 2.0,
        gauss_sigma: float = 5.0,
        dynamic_img_size: bool = False,
        dynamic_img_pad: bool = False,
        class_token: bool = False,
        shared_rel_pos: bool = False,
        embed_layer=PatchEmbed,
        **kwargs,
    ):
        if shared_rel_pos:
            raise ValueError(
                "shared_rel_pos=True is not supported by VisionTransformerGauss: "
                "the Gaussian bias is added to each layer's own relative position bias"
            )
        super().__init__(
            class_token=class_token,
            embed_layer=partial(
                embed_layer, strict_img_size=not dynamic_img_size, dynamic_img_pad=dynamic_img_pad
            ),
            block_fn=partial(
                GaussRelPosBlock,
                num_prefix_tokens=1 if class_token else 0,
                gauss_amplitude=gauss_amplitude,
                gauss_sigma=gauss_sigma,
            ),
            **kwargs,
        )
        self.dynamic_img_size = dynamic_img_size

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # A and sigma are the bias's shape, not weights to shrink (the paper excludes them)
        gauss = {name for name, _ in self.named_parameters() if ".gauss_bias." in f".{name}"}
        return super().no_weight_decay() | gauss

    def clear_attn_bias_cache(self) -> None:
        """Drop every layer's cached inference bias (only needed after ``param.data`` edits)."""
        for block in self.blocks:
            block.attn.clear_attn_bias_cache()

    def _grid_size(self, x: torch.Tensor) -> tuple[int, int]:
        if self.dynamic_img_size:
            height, width = self.patch_embed.dynamic_feat_size((x.shape[-2], x.shape[-1]))
            return height, width
        height, width = self.patch_embed.grid_size
        return height, width

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        return_prefix_tokens: bool = False,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ):
        """Forward features that returns intermediates (timm's contract; see the base class)."""
        assert output_fmt in ("NCHW", "NLC"), "Output format must be one of NCHW or NLC."
        reshape = output_fmt == "NCHW"
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)

        B = x.shape[0]
        grid_size = self._grid_size(x)
        x = self._embed(x)
        if torch.jit.is_scripting() or not stop_early:  # can't slice blocks in torchscript
            blocks = self.blocks
        else:
            blocks = self.blocks[: max_index + 1]
        for i, blk in enumerate(blocks):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, grid_size)
            else:
                x = blk(x, grid_size)
            if i in take_indices:
                intermediates.append(self.norm(x) if norm else x)

        prefix_tokens = [y[:, 0 : self.num_prefix_tokens] for y in intermediates]
        if self.num_prefix_tokens:
            intermediates = [y[:, self.num_prefix_tokens :] for y in intermediates]
        if reshape:
            height, width = grid_size
            intermediates = [
                y.reshape(B, height, width, -1).permute(0, 3, 1, 2).contiguous()
                for y in intermediates
            ]
        if not torch.jit.is_scripting() and return_prefix_tokens:
            intermediates = list(zip(intermediates, prefix_tokens, strict=True))

        if intermediates_only:
            return intermediates
        x = self.norm(x)
        return x, intermediates

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        grid_size = self._grid_size(x)
        x = self._embed(x)
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, grid_size)
            else:
                x = blk(x, grid_size)
        return self.norm(x)


def checkpoint_filter_fn(state_dict: dict, model: VisionTransformerGauss) -> dict:
    """Convert a timm ``vit_relpos_*`` checkpoint: same weights, ``A`` and ``sigma`` at init.

    A checkpoint of a ``vit_gauss_*`` model (already holding ``gauss_bias`` entries) passes
    through unchanged apart from timm's relative-position table resizing.
    """
    out = relpos_checkpoint_filter_fn(state_dict, model)
    for name, param in model.named_parameters():
        if ".gauss_bias." in f".{name}" and name not in out:
            out[name] = param.detach().clone()
    return out


def _create_vit_gauss(variant: str, pretrained: bool = False, **kwargs) -> VisionTransformerGauss:
    out_indices = kwargs.pop("out_indices", 3)
    return build_variant(
        VisionTransformerGauss,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


VARIANTS = ["vit_gauss_ti16", "vit_gauss_s16", "vit_gauss_m16", "vit_gauss_b16"]
default_cfgs = generate_default_cfgs(registry_default_cfgs(VARIANTS, vit_cfg))


@register_model
def vit_gauss_ti16(pretrained: bool = False, **kwargs) -> VisionTransformerGauss:
    """ViT-Ti/16 with RelPosMlp and a Gaussian attention bias (no timm base checkpoint)."""
    model_args = dict(
        patch_size=16, embed_dim=192, depth=12, num_heads=3, qkv_bias=False, fc_norm=True
    )
    return _create_vit_gauss("vit_gauss_ti16", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vit_gauss_s16(pretrained: bool = False, **kwargs) -> VisionTransformerGauss:
    """ViT-S/16 (``vit_relpos_small_patch16_224`` shape) with a Gaussian attention bias."""
    model_args = dict(
        patch_size=16, embed_dim=384, depth=12, num_heads=6, qkv_bias=False, fc_norm=True
    )
    return _create_vit_gauss("vit_gauss_s16", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vit_gauss_m16(pretrained: bool = False, **kwargs) -> VisionTransformerGauss:
    """ViT-M/16 (``vit_relpos_medium_patch16_224`` shape) with a Gaussian attention bias."""
    model_args = dict(
        patch_size=16, embed_dim=512, depth=12, num_heads=8, qkv_bias=False, fc_norm=True
    )
    return _create_vit_gauss("vit_gauss_m16", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vit_gauss_b16(pretrained: bool = False, **kwargs) -> VisionTransformerGauss:
    """ViT-B/16 (``vit_relpos_base_patch16_224`` shape) with a Gaussian attention bias."""
    model_args = dict(
        patch_size=16, embed_dim=768, depth=12, num_heads=12, qkv_bias=False, fc_norm=True
    )
    return _create_vit_gauss("vit_gauss_b16", pretrained=pretrained, **dict(model_args, **kwargs))
