"""``GammaDecayOptimWrapperConstructor``: paper F's gamma weight-decay policy for mmengine."""

from __future__ import annotations

from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

from zoo.guidelines.gamma_decay import (
    NORM_TYPES,
    OUTSIDE,
    classify_norms,
    decay_decisions,
    resolve_policy,
)

# paramwise_cfg options that would decide norm or bias decay, which the policy decides here
_POLICY_DECIDES = ("norm_decay_mult", "bias_decay_mult", "flat_decay_mult")


def segmentor_norm_categories(model: nn.Module) -> tuple[dict[str, str], list[str]]:
    """``({norm name: category}, [submodules classified without tracing])`` for a model
    torch.fx may not trace whole (an mmseg segmentor: data samples, shape-dependent resizes).

    The whole model is tried first, then each direct child (backbone, neck, heads). The norms
    of a child fx cannot trace (mmseg's decode heads resize by shape) count as ``outside``
    residual branches: those heads have none, and ``outside`` is the no-decay category.
    """
    try:
        return classify_norms(model), []
    except ValueError:
        pass
    categories: dict[str, str] = {}
    untraced = []
    for child_name, child in model.named_children():
        norms = [n for n, m in child.named_modules() if isinstance(m, NORM_TYPES)]
        if not norms:
            continue
        try:
            found = classify_norms(child)
        except ValueError:
            untraced.append(child_name)
            found = {
                n: OUTSIDE
                for n, m in child.named_modules()
                if isinstance(m, NORM_TYPES) and getattr(m, "weight", None) is not None
            }
        categories.update({f"{child_name}.{n}": c for n, c in found.items()})
    return categories, untraced


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GammaDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, with weight decay decided by paper F's gamma policy.

    Which parameters decay is decided as :func:`zoo.guidelines.gamma_decay_groups` decides it:
    the policy for every norm gamma (categories by structure), timm's rule for the rest
    (biases, 1-d parameters: no decay). How much, and every learning rate, comes from
    ``paramwise_cfg`` as usual (``custom_keys`` with ``lr_mult`` / ``decay_mult``, ...), so the
    two compose. ``norm_decay_mult``, ``bias_decay_mult`` and ``flat_decay_mult`` would decide
    the same thing twice and are refused.

    Config::

        optim_wrapper = dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
            constructor='GammaDecayOptimWrapperConstructor',
            paramwise_cfg=dict(gamma_policy='paper',  # or 'all', 'none', {category: bool}
                               custom_keys={'decode_head': dict(lr_mult=10.0)}))

    After the call, ``self.report`` holds the per-norm decisions and ``self.untraced`` the
    submodules whose norms were classified without tracing (see
    :func:`segmentor_norm_categories`).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        policy = paramwise_cfg.pop("gamma_policy", "paper")
        resolve_policy(policy)  # a bad name fails at build time, with the accepted ones
        clashes = [k for k in _POLICY_DECIDES if k in paramwise_cfg]
        if clashes:
            raise ValueError(
                f"paramwise_cfg: {', '.join(clashes)} cannot be combined with "
                "GammaDecayOptimWrapperConstructor, whose gamma_policy decides norm and bias "
                "decay; use gamma_policy='paper'|'all'|'none' or a {category: bool} dict"
            )
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        self.gamma_policy = policy
        self.report: list = []
        self.untraced: list[str] = []

    def __call__(self, model: nn.Module):
        if hasattr(model, "module"):
            model = model.module
        categories, self.untraced = segmentor_norm_categories(model)
        decisions, self.report = decay_decisions(model, self.gamma_policy, categories)
        params: list[dict] = []
        self.add_params(params, model)
        names = {id(p): n for n, p in model.named_parameters()}
        base = self.base_wd or 0.0
        for group in params:
            (param,) = group["params"]
            decays = decisions[names[id(param)]]
            group["weight_decay"] = group.get("weight_decay", base) if decays else 0.0

        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg["params"] = merge_param_groups(params)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault("type", "OptimWrapper")
        return OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args={"optimizer": OPTIMIZERS.build(optimizer_cfg)}
        )


def merge_param_groups(groups: list[dict]) -> list[dict]:
    """One group per distinct set of options (in first-seen order), parameters in order."""
    merged: dict[tuple, dict] = {}
    for group in groups:
        options = {k: v for k, v in group.items() if k != "params"}
        key = tuple(sorted(options.items()))
        merged.setdefault(key, {**options, "params": []})["params"].extend(group["params"])
    return list(merged.values())
