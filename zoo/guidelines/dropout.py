"""Where dropout goes in a residual network with batch norm (paper D, arXiv 2302.06112).

The guideline: **one** element-wise dropout per residual branch, after the branch's last BN
(and its activation) and before its last weight layer; and in the head, dropout on the feature
map **before** global average pooling, not after it. In timm's blocks that is:

=============================  ====================================================
block                          residual branch
=============================  ====================================================
``BasicBlock`` (ResNet-18/34)  conv1-bn1-act1-**dropout**-conv2-bn2
``Bottleneck`` (ResNet-50+)    conv1-bn1-act1-conv2-bn2-act2-**dropout**-conv3-bn3
``PreActBasic`` (ResNetV2)     bn-act-conv1-bn-act-**dropout**-conv2
``PreActBottleneck``           bn-act-conv1-bn-act-conv2-bn-act-**dropout**-conv3
=============================  ====================================================

For post-activation blocks the last BN that a weight layer follows is the one before the last
conv (``bn2`` in a bottleneck); for pre-activation blocks this is the authors' own order. No
parameter is added, so the base architecture's weights load exactly and, in eval mode, the
model computes exactly what the base does.

:func:`place_dropout` applies this to an existing timm ``ResNet`` / ``ResNetV2``: every block
becomes the matching ``DropoutPlaced*`` subclass (same parameters, a ``branch_drop`` module in
the documented position) and the model becomes ``DropoutPlacedResNet`` /
``DropoutPlacedResNetV2`` (a ``head_drop`` on the feature map before pooling; timm's dropout
after pooling is switched off).
"""

from __future__ import annotations

import torch
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from timm.models.resnetv2 import PreActBasic, PreActBottleneck, ResNetV2
from torch import nn


def _check_probability(name: str, p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {p!r}")
    return float(p)


class DropoutPlacedBasicBlock(BasicBlock):
    """timm ``BasicBlock`` with ``branch_drop`` after act1, before conv2 (the last conv)."""

    branch_drop: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.drop_block(x)
        x = self.act1(x)
        x = self.aa(x)
        x = self.branch_drop(x)
        x = self.conv2(x)
        x = self.bn2(x)
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act2(x)


class DropoutPlacedBottleneck(Bottleneck):
    """timm ``Bottleneck`` with ``branch_drop`` after bn2-act2, before conv3 (the last conv)."""

    branch_drop: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.act1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = self.drop_block(x)
        x = self.act2(x)
        x = self.aa(x)
        x = self.branch_drop(x)
        x = self.conv3(x)
        x = self.bn3(x)
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act3(x)


class DropoutPlacedPreActBasic(PreActBasic):
    """timm ``PreActBasic`` with ``branch_drop`` after norm2 (BN-ReLU), before conv2."""

    branch_drop: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.norm1(x)
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(x_preact)
        x = self.conv1(x_preact)
        x = self.conv2(self.branch_drop(self.norm2(x)))
        x = self.drop_path(x)
        return x + shortcut


class DropoutPlacedPreActBottleneck(PreActBottleneck):
    """timm ``PreActBottleneck`` with ``branch_drop`` after norm3 (BN-ReLU), before conv3."""

    branch_drop: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.norm1(x)
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(x_preact)
        x = self.conv1(x_preact)
        x = self.conv2(self.norm2(x))
        x = self.conv3(self.branch_drop(self.norm3(x)))
        x = self.drop_path(x)
        return x + shortcut


class DropoutPlacedResNet(ResNet):
    """timm ``ResNet`` with paper D's dropout: one per residual branch, and on the feature map
    before global pooling.

    Args:
        branch_drop_rate: dropout probability in every residual branch.
        drop_rate: dropout probability on the feature map before pooling (timm's ``drop_rate``
            drops after pooling; here it moves). Other arguments are timm ``ResNet``'s.
    """

    head_drop: nn.Module

    def __init__(self, *args, branch_drop_rate: float = 0.0, drop_rate: float = 0.0, **kwargs):
        super().__init__(*args, drop_rate=0.0, **kwargs)
        place_dropout(self, branch_drop_rate, drop_rate)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        x = self.global_pool(x)
        return x if pre_logits else self.fc(x)


class DropoutPlacedResNetV2(ResNetV2):
    """timm ``ResNetV2`` (pre-activation) with paper D's dropout; arguments as
    :class:`DropoutPlacedResNet`."""

    head_drop: nn.Module

    def __init__(self, *args, branch_drop_rate: float = 0.0, drop_rate: float = 0.0, **kwargs):
        super().__init__(*args, drop_rate=0.0, **kwargs)
        place_dropout(self, branch_drop_rate, drop_rate)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        return self.head(x, pre_logits=pre_logits) if pre_logits else self.head(x)


_BLOCKS = {
    BasicBlock: DropoutPlacedBasicBlock,
    Bottleneck: DropoutPlacedBottleneck,
    PreActBasic: DropoutPlacedPreActBasic,
    PreActBottleneck: DropoutPlacedPreActBottleneck,
}
_MODELS = {ResNet: DropoutPlacedResNet, ResNetV2: DropoutPlacedResNetV2}


def _placed_class(module: nn.Module, table: dict[type, type]) -> type | None:
    for base, placed in table.items():
        if type(module) in (base, placed):
            return placed
    return None


def place_dropout(model: nn.Module, branch_p: float, head_p: float) -> nn.Module:
    """Put dropout where paper D says, in place, on a timm ``ResNet`` or ``ResNetV2``.

    Args:
        model: a timm ``ResNet`` (BasicBlock / Bottleneck) or ``ResNetV2`` (pre-activation).
        branch_p: element-wise dropout probability of the one dropout in every residual branch.
        head_p: dropout probability on the final feature map, before global pooling (replaces
            timm's ``drop_rate``, which drops after pooling).

    Returns:
        ``model`` (same object, same parameters), now of class ``DropoutPlacedResNet`` /
        ``DropoutPlacedResNetV2``. Calling it again just updates the probabilities.
    """
    branch_p = _check_probability("branch_p", branch_p)
    head_p = _check_probability("head_p", head_p)
    model_class = _placed_class(model, _MODELS)
    if model_class is None:
        supported = ", ".join(c.__name__ for c in _MODELS)
        raise TypeError(f"place_dropout supports timm {supported}; got {type(model).__name__}")
    blocks = [m for m in model.modules() if isinstance(m, tuple(_BLOCKS))]
    for block in blocks:
        block_class = _placed_class(block, _BLOCKS)
        if block_class is None:  # a subclass of a timm block with its own forward
            raise TypeError(f"place_dropout cannot place dropout in {type(block).__name__}")
    for block in blocks:
        block.__class__ = _placed_class(block, _BLOCKS)
        # new modules follow the mode the model is in (an eval model must not start dropping)
        block.branch_drop = nn.Dropout(branch_p).train(block.training)
    model.__class__ = model_class
    model.head_drop = nn.Dropout(head_p).train(model.training)
    model.drop_rate = 0.0
    if isinstance(model, ResNetV2):
        model.head.drop = nn.Identity()
    return model
