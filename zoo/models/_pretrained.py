"""Pretrained configs from the registry, and the checks around loading them.

The registry (``registry/<variant>.json``) is the one source of truth for weights: each model
file builds its timm ``default_cfgs`` from it, so a tag exists in timm exactly when the registry
has a weight source for it. A conversion from a timm checkpoint points ``hf_hub_id`` at that
checkpoint's Hub repo; the model's ``checkpoint_filter_fn`` converts it while loading.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from timm.data import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
)
from timm.models import build_model_with_cfg, get_pretrained_cfg, resolve_pretrained_cfg

from zoo.hub.registry import WEIGHT_KINDS, load_registry

# Only safetensors are loaded from the Hub: a pickle is never unpickled on the zoo's behalf.
HUB_WEIGHTS_FILE = "model.safetensors"

# Fields of a source checkpoint's timm cfg that describe where its weights live or who it is,
# not how to feed the model: never inherited by a conversion.
_SOURCE_ONLY_FIELDS = {
    "url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "architecture",
    "tag", "custom_load", "origin_url", "paper_ids", "paper_name", "notes", "license",
}  # fmt: skip


class InitOnlyWeightsWarning(UserWarning):
    """The loaded weights only initialise the variant: its function differs from the source."""


def vit_cfg(**kwargs: Any) -> dict[str, Any]:
    """Pretrained-cfg defaults of the zoo's ViT families (timm's ``vision_transformer._cfg``)."""
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": None,
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "fixed_input_size": True,
        "mean": IMAGENET_INCEPTION_MEAN,
        "std": IMAGENET_INCEPTION_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        **kwargs,
    }


def _source_data_cfg(source: str) -> dict[str, Any]:
    """Input size, crop, interpolation, mean/std... of a timm Hub checkpoint (``timm/<name>``).

    A conversion is fed exactly like the checkpoint it was converted from.
    """
    org, _, name = source.partition("/")
    cfg = get_pretrained_cfg(name) if org == "timm" else None
    if cfg is None:
        return {}
    return {k: v for k, v in cfg.to_dict().items() if k not in _SOURCE_ONLY_FIELDS}


def resnet_cfg(**kwargs: Any) -> dict[str, Any]:
    """Pretrained-cfg defaults of the zoo's ResNet families (timm's ``resnet._cfg``)."""
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "conv1",
        "classifier": "fc",
        **kwargs,
    }


def registry_default_cfgs(
    names: list[str], make_cfg: Callable[..., dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{'<variant>.<tag>': cfg}`` for every weight source of ``names`` in the registry.

    Each cfg also names the variant's paper. A variant without weight sources gets one
    untagged cfg (architecture only), so ``pretrained=True`` can be refused with a clear
    message (:func:`build_variant`).
    """
    registry = load_registry()
    cfgs = {}
    for name in names:
        variant = registry.variant(name)
        paper = registry.papers[variant.paper]
        paper_fields = {"paper_ids": f"arXiv:{paper.arxiv}", "paper_name": paper.title}
        if not variant.weights:
            cfgs[name] = make_cfg(**paper_fields)
        for weights in variant.weights:
            if weights.kind == "trained":
                hub_id, data_cfg = weights.hub_id, {}
            else:
                hub_id, data_cfg = weights.source, _source_data_cfg(weights.source)
            cfgs[f"{name}.{weights.tag}"] = make_cfg(
                **data_cfg,
                hf_hub_id=hub_id,
                hf_hub_filename=HUB_WEIGHTS_FILE,
                license=weights.license,
                **paper_fields,
            )
    return cfgs


def _has_weight_source(cfg: Any) -> bool:
    return bool(cfg.url or cfg.hf_hub_id or cfg.file or cfg.state_dict)


def warn_if_init_only(pretrained_cfg: dict[str, Any]) -> None:
    """Warn when the weights just loaded are an init-only conversion from the registry."""
    if pretrained_cfg.get("file") or pretrained_cfg.get("state_dict"):
        return  # the user's own weights, not the registry's source
    variant = load_registry().variants.get(pretrained_cfg.get("architecture", ""))
    if variant is None:
        return
    for weights in variant.weights:
        loaded_this_source = (
            weights.tag == pretrained_cfg.get("tag")
            and pretrained_cfg.get("hf_hub_id") == weights.source
        )
        if loaded_this_source and weights.kind == "init":
            warnings.warn(
                f"{variant.name}.{weights.tag} is initialised from {weights.source}: "
                f"{WEIGHT_KINDS['init']}.",
                InitOnlyWeightsWarning,
                stacklevel=2,
            )


def build_variant(
    model_cls: type,
    variant: str,
    pretrained: bool,
    *,
    pretrained_filter_fn: Callable,
    **kwargs: Any,
):
    """``timm.models.build_model_with_cfg`` with the zoo's two promises about weights.

    ``pretrained=True`` on a variant with no weight source is an error (timm would only log a
    warning and return random weights); loading an ``init`` conversion warns, unless the model
    built with these arguments says the conversion is exact (``pretrained_conversion_exact``,
    e.g. kernel padding without pools).
    """
    if pretrained:
        cfg = resolve_pretrained_cfg(
            variant,
            pretrained_cfg=kwargs.get("pretrained_cfg"),
            pretrained_cfg_overlay=kwargs.get("pretrained_cfg_overlay"),
        )
        if not _has_weight_source(cfg):
            available = [f"{variant}.{w.tag}" for w in load_registry().variant(variant).weights]
            raise ValueError(
                f"pretrained=True: {variant} has no pretrained weights in the zoo registry "
                f"(tags with weights: {', '.join(available) or 'none'}). Use pretrained=False, "
                "or pass your own file with pretrained_cfg_overlay=dict(file='....safetensors')."
            )

    def filter_then_warn(state_dict, model):
        converted = pretrained_filter_fn(state_dict, model)
        if not getattr(model, "pretrained_conversion_exact", False):
            warn_if_init_only(model.pretrained_cfg)
        return converted

    return build_model_with_cfg(
        model_cls, variant, pretrained, pretrained_filter_fn=filter_then_warn, **kwargs
    )
