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

from zoo.hub.download import HUB_WEIGHTS_FILE, fetch_safetensors
from zoo.hub.registry import WEIGHT_KINDS, WeightSource, load_registry

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


def registry_weights(variant: str, cfg: Any) -> WeightSource | None:
    """The registry's weight source that pretrained cfg ``cfg`` of ``variant`` points at: a
    conversion by tag and source, the zoo's own checkpoint by Hub id (so ``hf-hub:`` loads
    of it are verified too). None for weights the registry does not know."""
    entry = load_registry().variants.get(variant)
    if entry is None or not cfg.hf_hub_id:
        return None
    hub_id = cfg.hf_hub_id.partition("@")[0]
    for weights in entry.weights:
        if weights.kind == "trained" and weights.hub_id == hub_id:
            return weights
        if weights.kind != "trained" and weights.source == hub_id and weights.tag == cfg.tag:
            return weights
    return None


def _fetch_verified(cfg: Any, weights: WeightSource | None) -> str:
    """``model.safetensors`` of the cfg's Hub repo through huggingface_hub (the call timm
    makes), refused when only pickles are offered, sha256-checked for the zoo's own."""
    hub_id, _, revision = cfg.hf_hub_id.partition("@")
    if weights is not None and weights.kind == "trained":
        return str(fetch_safetensors(hub_id, revision=weights.revision, sha256=weights.sha256))
    return str(fetch_safetensors(hub_id, revision=revision or None))


def build_variant(
    model_cls: type,
    variant: str,
    pretrained: bool,
    *,
    pretrained_filter_fn: Callable,
    **kwargs: Any,
):
    """``timm.models.build_model_with_cfg`` with the zoo's promises about weights.

    ``pretrained=True`` on a variant with no weight source is an error (timm would only log a
    warning and return random weights); Hub weights are fetched as ``model.safetensors`` only
    (a pickle-only source is refused) and the zoo's own are checked against the registry's
    sha256 before timm loads the verified file; loading an ``init`` conversion warns, unless
    the model built with these arguments says the conversion is exact
    (``pretrained_conversion_exact``, e.g. kernel padding without pools).
    """
    weights = None
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
        if cfg.hf_hub_id and not (cfg.file or cfg.state_dict):  # not the user's own weights
            weights = registry_weights(variant, cfg)
            overlay = dict(kwargs.get("pretrained_cfg_overlay") or {})
            overlay["file"] = _fetch_verified(cfg, weights)
            kwargs["pretrained_cfg_overlay"] = overlay

    def filter_then_warn(state_dict, model):
        converted = pretrained_filter_fn(state_dict, model)
        exact = getattr(model, "pretrained_conversion_exact", False)
        if weights is not None and weights.kind == "init" and not exact:
            warnings.warn(
                f"{variant}.{weights.tag} is initialised from {weights.source}: "
                f"{WEIGHT_KINDS['init']}.",
                InitOnlyWeightsWarning,
                stacklevel=2,
            )
        return converted

    return build_model_with_cfg(
        model_cls, variant, pretrained, pretrained_filter_fn=filter_then_warn, **kwargs
    )
