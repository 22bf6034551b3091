"""Building blocks the zoo's variants are made of; each usable on its own."""

from zoo.layers.gaussian_bias import GaussianAttentionBias
from zoo.layers.prenorm_patch_embed import PreLayerNormPatchEmbed

__all__ = ["GaussianAttentionBias", "PreLayerNormPatchEmbed"]
