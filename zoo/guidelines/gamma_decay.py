"""Which normalization gammas to weight-decay (paper F, arXiv 2205.07260).

The paper's two analyses (variance control: L2 on a gamma pulls its residual block towards the
identity; effective learning rate: L2 on a scale-invariant weight raises its effective step)
split the gammas into four categories. Their exact wording is not published in a source we
could read; these four, derived from the two analyses, are ours (see ``docs/cnn.md``):

``last_in_branch``  last norm of a residual branch. Decay: shrinking it pulls the block
                    towards the identity mapping.
``shortcut``        norm on the shortcut path, or a norm whose output feeds a shortcut with
                    weights (pre-activation at a downsampling block). No decay: it scales the
                    main path that every later block reads.
``inner``           any other norm inside a residual branch (followed by a weight layer and
                    another norm, so its scale is invisible downstream). Decay: effective
                    learning rate.
``outside``         norms outside residual branches: stem, between stages, final norm. No
                    decay.

Categories come from the model's **structure**, not from parameter names: the model is traced
with torch.fx (norm layers as leaves); every addition whose two operands share an ancestor is
a residual join; the two arms between the fork and the join are the residual branch (the arm
with more weight layers) and the shortcut. This works for timm ResNet, ResNeXt, ResNetV2,
ConvNeXt and ViT alike.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from timm.layers import get_notrace_functions, get_notrace_modules
from torch import fx, nn

LAST_IN_BRANCH, SHORTCUT, INNER, OUTSIDE = "last_in_branch", "shortcut", "inner", "outside"
CATEGORIES = (LAST_IN_BRANCH, SHORTCUT, INNER, OUTSIDE)

POLICIES: dict[str, dict[str, bool]] = {
    "paper": {LAST_IN_BRANCH: True, SHORTCUT: False, INNER: True, OUTSIDE: False},
    "all": dict.fromkeys(CATEGORIES, True),  # decay every gamma (some libraries' default)
    "none": dict.fromkeys(CATEGORIES, False),  # decay no gamma (timm's default: ndim <= 1)
}

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
_WEIGHT_TYPES = (nn.modules.conv._ConvNd, nn.Linear)
_ADDS = {operator.add, operator.iadd, torch.add}


class _NormLeafTracer(fx.Tracer):
    """Traces down to norm layers (kept whole) and timm's no-trace modules and functions."""

    def __init__(self):
        super().__init__(autowrap_functions=tuple(get_notrace_functions()))
        self._notrace = tuple(get_notrace_modules())

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, NORM_TYPES) or (self._notrace and isinstance(m, self._notrace)):
            return True
        return super().is_leaf_module(m, qualname)


def _is_residual_add(node: fx.Node) -> bool:
    """An addition of two traced tensors (``x + y``, ``x += y``, ``torch.add``, ``x.add(y)``)."""
    is_add = (node.op == "call_function" and node.target in _ADDS) or (
        node.op == "call_method" and node.target in ("add", "add_")
    )
    return is_add and sum(isinstance(a, fx.Node) for a in node.args[:2]) == 2


def _ancestors(node: fx.Node, memo: dict[fx.Node, frozenset]) -> frozenset:
    """The node and everything it depends on (memoised; the graph is visited in order)."""
    if node not in memo:
        found = {node}
        for parent in node.all_input_nodes:
            found |= _ancestors(parent, memo)
        memo[node] = frozenset(found)
    return memo[node]


def classify_norms(model: nn.Module) -> dict[str, str]:
    """``{norm module name: category}`` for every normalization layer with a learnable gamma."""
    try:
        graph = _NormLeafTracer().trace(model)
    except Exception as err:
        raise ValueError(
            f"classify_norms could not trace {type(model).__name__} with torch.fx "
            f"({type(err).__name__}: {err}); the gamma categories come from the traced graph"
        ) from err
    modules = dict(model.named_modules())
    order = {node: i for i, node in enumerate(graph.nodes)}
    memo: dict[fx.Node, frozenset] = {}
    for node in graph.nodes:  # in topological order, so recursion stays shallow
        _ancestors(node, memo)

    def is_module(node: fx.Node, types) -> bool:
        return node.op == "call_module" and isinstance(modules[node.target], types)

    categories: dict[str, str] = {}
    for join in graph.nodes:
        if not _is_residual_add(join):
            continue
        left, right = join.args[0], join.args[1]
        common = _ancestors(left, memo) & _ancestors(right, memo)
        if not common:
            continue  # e.g. x + pos_embed: not a residual join
        fork = max(common, key=order.__getitem__)
        arms = [set(_ancestors(arm, memo) - _ancestors(fork, memo)) for arm in (left, right)]
        weights = [sum(is_module(n, _WEIGHT_TYPES) for n in arm) for arm in arms]
        if weights[0] == weights[1]:
            continue  # no branch/shortcut asymmetry (two identities, or parallel branches)
        branch, shortcut = (arms[0], arms[1]) if weights[0] > weights[1] else (arms[1], arms[0])
        branch_norms = [n for n in branch if is_module(n, NORM_TYPES)]
        for norm in branch_norms:
            later = any(norm in _ancestors(other, memo) for other in branch_norms if other != norm)
            categories.setdefault(norm.target, INNER if later else LAST_IN_BRANCH)
        for norm in shortcut:
            if is_module(norm, NORM_TYPES):
                categories[norm.target] = SHORTCUT
        if is_module(fork, NORM_TYPES) and any(is_module(n, _WEIGHT_TYPES) for n in shortcut):
            categories[fork.target] = SHORTCUT  # pre-activation feeding a downsample

    result = {}
    for name, module in model.named_modules():
        if isinstance(module, NORM_TYPES) and getattr(module, "weight", None) is not None:
            result[name] = categories.get(name, OUTSIDE)
    return result


def resolve_policy(policy: str | Mapping[str, bool]) -> dict[str, bool]:
    """A named policy, or a per-category dict laid over the paper's policy."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(
                f"policy must be one of {', '.join(POLICIES)} or a dict; got {policy!r}"
            )
        return dict(POLICIES[policy])
    if isinstance(policy, Mapping):
        unknown = sorted(set(policy) - set(CATEGORIES))
        if unknown:
            raise ValueError(
                f"policy has unknown categories {unknown}; accepted: {', '.join(CATEGORIES)}"
            )
        bad = {k: v for k, v in policy.items() if not isinstance(v, bool)}
        if bad:
            raise ValueError(f"policy values must be True or False, got {bad}")
        return {**POLICIES["paper"], **policy}
    raise ValueError(f"policy must be a name or a dict, got {type(policy).__name__}")


@dataclass(frozen=True)
class NormDecay:
    name: str
    layer: str
    category: str
    decay: bool


class GammaDecayGroups(list):
    """Optimizer param groups (a plain list of dicts) that also carry the per-norm report."""

    def __init__(self, groups: Iterable[dict], report: list[NormDecay]):
        super().__init__(groups)
        self.report = report

    def counts(self) -> dict[str, int]:
        return {c: sum(r.category == c for r in self.report) for c in CATEGORIES}

    def table(self) -> str:
        width = max((len(r.name) for r in self.report), default=4)
        lines = [f"{'norm':<{width}}  {'type':<16} {'category':<15} gamma decay"]
        for r in self.report:
            lines.append(
                f"{r.name:<{width}}  {r.layer:<16} {r.category:<15} {'yes' if r.decay else 'no'}"
            )
        counts = ", ".join(f"{c}: {n}" for c, n in self.counts().items())
        lines.append(f"({counts})")
        return "\n".join(lines)


def decay_decisions(
    model: nn.Module,
    policy: str | Mapping[str, bool] = "paper",
    categories: Mapping[str, str] | None = None,
) -> tuple[dict[str, bool], list[NormDecay]]:
    """``({parameter name: decays?}, per-norm report)``: the policy for every gamma, timm's
    rule for the rest (biases, 1-d parameters and ``no_weight_decay()`` names: no decay).
    ``categories`` (``{norm name: category}``) defaults to :func:`classify_norms`."""
    decide = resolve_policy(policy)
    categories = classify_norms(model) if categories is None else categories
    modules = dict(model.named_modules())
    gamma_decay = {f"{name}.weight": decide[category] for name, category in categories.items()}
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decisions = {
        name: gamma_decay[name]
        if name in gamma_decay
        else param.ndim > 1 and not name.endswith(".bias") and name not in skip
        for name, param in model.named_parameters()
    }
    report = [
        NormDecay(name, type(modules[name]).__name__, category, decide[category])
        for name, category in categories.items()
    ]
    return decisions, report


def gamma_decay_groups(
    model: nn.Module, weight_decay: float, policy: str | Mapping[str, bool] = "paper"
) -> GammaDecayGroups:
    """Param groups that weight-decay exactly the gammas the policy names.

    Every other parameter follows timm's rule (``timm.optim.param_groups_weight_decay``):
    biases, 1-d parameters and ``model.no_weight_decay()`` names get no decay, the rest gets
    ``weight_decay``. Every trainable parameter appears in exactly one group.

    Args:
        model: any model torch.fx can trace with norm layers as leaves.
        weight_decay: the decay of the decayed group (>= 0).
        policy: ``'paper'`` (default), ``'all'``, ``'none'``, or a dict
            ``{category: bool}`` laid over ``'paper'`` (categories: see module docstring).

    Returns:
        ``GammaDecayGroups``: a list of two groups usable by any torch optimizer and by
        ``timm.optim.create_optimizer_v2``, with ``.report`` / ``.table()`` per norm layer.
    """
    if (
        isinstance(weight_decay, bool)
        or not isinstance(weight_decay, int | float)
        or weight_decay < 0
    ):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    decisions, report = decay_decisions(model, policy)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if decisions[name] else no_decay).append(param)
    groups = [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": float(weight_decay)},
    ]
    return GammaDecayGroups(groups, report)
