"""PreLayerNorm patch embedding (paper G, arXiv 2111.08413).

``z0 = LN(P x) + E_pos``: a bias-free patch projection ``P``, then LayerNorm, and only then does
the model add its position embedding. Scaling the image by any ``c > 0`` scales ``P x`` by ``c``
and LayerNorm removes it, so the tokens (and everything after them) are unchanged up to the
LayerNorm epsilon: contrast changes can no longer shift the balance between patch content and
position embedding. This is not timm's ``pre_norm``, which normalises *after* the position
embedding has been added and so cannot make the embedding scale-invariant.

timm's ``PatchEmbed`` already applies its ``norm_layer`` right after the projection (before the
model adds positions); this class pins the two choices that make that a PreLayerNorm.
"""

from functools import partial

from timm.layers import PatchEmbed
from torch import nn


class PreLayerNormPatchEmbed(PatchEmbed):
    """timm ``PatchEmbed`` with a bias-free projection followed by LayerNorm.

    Accepts every ``PatchEmbed`` argument. ``bias`` must stay False (a bias in ``P`` would break
    the scale invariance); ``norm_layer`` defaults to ``LayerNorm(eps=1e-6)``, timm's ViT norm.
    """

    def __init__(self, *args, bias: bool = False, norm_layer=None, **kwargs):
        # timm's VisionTransformer passes bias=True unless its own pre_norm is on: a bias is
        # never what this embedding wants, so the flag is overridden here, not rejected.
        super().__init__(
            *args,
            bias=False,
            norm_layer=norm_layer or partial(nn.LayerNorm, eps=1e-6),
            **kwargs,
        )
