"""Vision Transformers with a PreLayerNorm patch embedding (paper G, arXiv 2111.08413).

timm's ``VisionTransformer`` with its patch embedding replaced by
``zoo.layers.PreLayerNormPatchEmbed``: ``z0 = LN(P x) + E_pos`` with a bias-free ``P``, so the
tokens do not change when the image is scaled by any ``c > 0`` (contrast changes). Everything
else, including ``dynamic_img_size``, ``forward_intermediates`` and TorchScript, is timm's.

Pretrained tags initialise from the base architecture's timm checkpoint: the projection weight
and everything after the embedding map one-to-one, the projection bias is dropped (this
embedding has none) and the new LayerNorm starts at identity (weight 1, bias 0). The function
changes, so these are init-only weights (fine-tune before use), and loading them warns.
"""

from __future__ import annotations

from timm.models import register_model
from timm.models._registry import generate_default_cfgs
from timm.models.vision_transformer import VisionTransformer
from timm.models.vision_transformer import checkpoint_filter_fn as vit_checkpoint_filter_fn

from zoo.layers.prenorm_patch_embed import PreLayerNormPatchEmbed
from zoo.models._pretrained import build_variant, registry_default_cfgs, vit_cfg

__all__ = ["checkpoint_filter_fn"]

_PROJ_BIAS = "patch_embed.proj.bias"


def checkpoint_filter_fn(state_dict: dict, model: VisionTransformer) -> dict:
    """Convert a timm ``vit_*`` checkpoint to the PreLayerNorm embedding.

    Drops the projection bias and adds the embedding LayerNorm at identity where the checkpoint
    has none; a checkpoint of a ``vit_preln_*`` model passes through (timm's position-embedding
    resampling still applies).
    """
    out = vit_checkpoint_filter_fn(state_dict, model)
    out.pop(_PROJ_BIAS, None)
    for name, param in model.patch_embed.norm.named_parameters():
        out.setdefault(f"patch_embed.norm.{name}", param.detach().clone())
    return out


def _create_vit_preln(variant: str, pretrained: bool = False, **kwargs) -> VisionTransformer:
    if kwargs.get("embed_layer", PreLayerNormPatchEmbed) is not PreLayerNormPatchEmbed:
        raise ValueError(
            f"{variant}: embed_layer is fixed to PreLayerNormPatchEmbed (the guideline itself); "
            "use timm's vit_* models for another patch embedding"
        )
    if kwargs.get("pre_norm"):
        raise ValueError(
            f"{variant}: pre_norm=True would add timm's norm after the position embedding and "
            "a bias to the projection; the PreLayerNorm embedding already normalises"
        )
    kwargs["embed_layer"] = PreLayerNormPatchEmbed
    out_indices = kwargs.pop("out_indices", 3)
    return build_variant(
        VisionTransformer,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


VARIANTS = ["vit_preln_ti16", "vit_preln_s16", "vit_preln_b16"]
default_cfgs = generate_default_cfgs(registry_default_cfgs(VARIANTS, vit_cfg))


@register_model
def vit_preln_ti16(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """ViT-Ti/16 (``vit_tiny_patch16_224`` shape) with a PreLayerNorm patch embedding."""
    model_args = dict(patch_size=16, embed_dim=192, depth=12, num_heads=3)
    return _create_vit_preln("vit_preln_ti16", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vit_preln_s16(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """ViT-S/16 (``vit_small_patch16_224`` shape) with a PreLayerNorm patch embedding."""
    model_args = dict(patch_size=16, embed_dim=384, depth=12, num_heads=6)
    return _create_vit_preln("vit_preln_s16", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vit_preln_b16(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """ViT-B/16 (``vit_base_patch16_224`` shape) with a PreLayerNorm patch embedding."""
    model_args = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12)
    return _create_vit_preln("vit_preln_b16", pretrained=pretrained, **dict(model_args, **kwargs))
