"""The ideal number of groups for GroupNorm (paper E, arXiv 2302.03193).

The paper's principle: the group count ``G`` changes the gradient scale of the GroupNorm
layer, and the ideal ``G`` is the one that makes gradient propagation isometric at
initialization, layer by layer. Its formula is not published in a source we could read; the
rule below is **ours**, derived from that principle (full derivation: ``docs/cnn.md``).

For a block ``conv -> GN(G) -> act`` at initialization (GN gain 1, bias 0) we predict the
ratio of gradient norms ``r(G) = ||dL/d x_in|| / ||dL/d z||`` (``x_in`` the conv's input,
``z`` the block's output) for a random upstream gradient::

    r(G)^2 = kappa / E[x_in^2] * (1 - 2/m) * I(n, rho)

    kappa    = E[act'(y)^2] for y ~ N(0, 1)            (1/2 for ReLU, 1 for no activation)
    n = C/G  channels per group,  m = n * H * W  elements per group
    rho      = share of the input's energy in per-channel spatial means
    I(n,rho) = E[1 / ((1 - rho) + rho * chi2_{n-1} / n)]

The conv's weight scale cancels (GN is scale-invariant). ``G`` enters through two terms: the
projection that GN's backward applies in each group removes two directions (``1 - 2/m``), and
the group variance ``sigma_g^2``: a conv at init gives each output channel a random spatial
offset carrying a share ``rho`` of its energy, and a group of ``n`` channels sees only the
sample variance of its ``n`` offsets, so fewer channels per group means a smaller
``sigma_g`` and a larger gradient (``I`` grows from ``~1`` at ``G = 1`` to ``1/(1 - rho)``
at ``G = C``). ``ideal_groups`` picks the divisor of ``C`` whose ``r(G)`` is closest to 1 (in
log scale); ``gn_calibrate`` measures ``E[x_in^2]``, ``rho`` and the activation of every
conv -> GroupNorm pair of a model at init and sets each layer's count in forward order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
    "identity": nn.Identity,
}

# Gradient-gain differences smaller than this (2 %) are below what the derivation resolves
# (predicted and measured gains agree to about that; tests/test_gn_groups.py).
DEFAULT_TOLERANCE = 0.02

# Unit-Gaussian expectations by Gauss-Hermite quadrature (probabilists'); an even count keeps
# the kink of ReLU-like activations at 0 off the nodes.
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
# E over t ~ Exp(1) by Gauss-Laguerre quadrature, for I(n, rho).
_LAGUERRE_NODES, _LAGUERRE_WEIGHTS = np.polynomial.laguerre.laggauss(96)


def activation_gain(activation: str | nn.Module | float) -> float:
    """``kappa = E[act'(y)^2]`` for ``y ~ N(0, 1)``: the share of gradient energy an activation
    passes back when its input is a normalized unit Gaussian.

    ``activation`` is a name (``ACTIVATIONS``), a module (any elementwise activation) or the
    gain itself (a positive float).
    """
    if isinstance(activation, bool) or not isinstance(activation, str | nn.Module | float | int):
        raise TypeError(
            f"activation must be a name ({', '.join(ACTIVATIONS)}), an nn.Module or a positive "
            f"float gain, got {type(activation).__name__}"
        )
    if isinstance(activation, float | int):
        if not (math.isfinite(activation) and activation > 0):
            raise ValueError(f"activation gain must be a positive finite float, got {activation}")
        return float(activation)
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)} (or a module or float), "
                f"got {activation!r}"
            )
        activation = ACTIVATIONS[activation]()
    y = torch.tensor(_HERMITE_NODES, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(activation(y.clone()).sum(), y)
    weights = torch.tensor(_HERMITE_WEIGHTS, dtype=torch.float64)
    return float((weights * slope.square()).sum() / weights.sum())


def _spatial_elements(spatial_size: int | Sequence[int]) -> int:
    sizes = (spatial_size,) if isinstance(spatial_size, int) else tuple(spatial_size)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(
            f"spatial_size must be a positive int (H*W) or a sequence of positive ints (H, W), "
            f"got {spatial_size!r}"
        )
    return math.prod(sizes)


def _check_channels_groups(channels: int, groups: int | None) -> None:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    if groups is not None and (
        isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or channels % groups
    ):
        raise ValueError(
            f"groups must be a positive divisor of channels={channels} "
            f"(one of {divisors(channels)}), got {groups!r}"
        )


def _check_statistics(input_mean_square: float, input_mean_fraction: float) -> None:
    if not (math.isfinite(input_mean_square) and input_mean_square > 0):
        raise ValueError(f"input_mean_square must be positive and finite, got {input_mean_square}")
    if not 0 <= input_mean_fraction < 1:
        raise ValueError(
            f"input_mean_fraction must be in [0, 1) (1 would make every channel constant), "
            f"got {input_mean_fraction}"
        )


def divisors(channels: int) -> list[int]:
    """The group counts GroupNorm accepts for ``channels``."""
    return [g for g in range(1, channels + 1) if channels % g == 0]


def _offset_amplification(channels_per_group: int, rho: float) -> float:
    """``I(n, rho) = E[1 / ((1 - rho) + rho * chi2_{n-1} / n)]``.

    With ``1/a = int_0^inf exp(-s a) ds`` and the chi-square Laplace transform, and
    ``t = s (1 - rho)``: ``I = E_{t ~ Exp(1)}[(1 + c t)^(-(n-1)/2)] / (1 - rho)`` with
    ``c = 2 rho / (n (1 - rho))``.
    """
    n = channels_per_group
    c = 2 * rho / (n * (1 - rho))
    expectation = np.sum(_LAGUERRE_WEIGHTS * (1 + c * _LAGUERRE_NODES) ** (-(n - 1) / 2))
    return float(expectation) / (1 - rho)


def gn_block_gain(
    channels: int,
    groups: int,
    spatial_size: int | Sequence[int],
    *,
    input_mean_square: float = 0.5,
    input_mean_fraction: float = 1 / math.pi,
    activation: str | nn.Module | float = "relu",
) -> float:
    """Predicted ``||dL/dx_in|| / ||dL/dz||`` of ``conv -> GroupNorm(groups) -> activation``
    at initialization (GN weight 1, bias 0), for a random upstream gradient. Ours; see the
    module docstring.

    Args:
        channels: the GroupNorm's channels (the conv's output channels).
        groups: the group count, a divisor of ``channels``.
        spatial_size: the GroupNorm's feature map, ``H*W`` or ``(H, W)``.
        input_mean_square: ``E[x_in^2]`` of the conv's input.
        input_mean_fraction: ``rho``, the share of ``E[x_in^2]`` in per-channel spatial means
            (``1/pi`` for ReLU of a Gaussian; ``0`` for white noise).
        activation: what follows the GroupNorm (``activation_gain``).

    The defaults describe a block fed by ``ReLU`` of a unit Gaussian.
    """
    _check_channels_groups(channels, groups)
    _check_statistics(input_mean_square, input_mean_fraction)
    spatial = _spatial_elements(spatial_size)
    kappa = activation_gain(activation)
    n = channels // groups
    m = n * spatial
    projection = max(1 - 2 / m, 0.0)  # a group of two elements normalizes to +-1: no gradient
    gain_sq = kappa / input_mean_square * projection * _offset_amplification(n, input_mean_fraction)
    return math.sqrt(gain_sq)


def ideal_groups(
    channels: int,
    spatial_size: int | Sequence[int],
    *,
    input_mean_square: float = 0.5,
    input_mean_fraction: float = 1 / math.pi,
    activation: str | nn.Module | float = "relu",
    current: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """The group count (a divisor of ``channels``) whose block gradient gain
    (:func:`gn_block_gain`) is closest to 1 in log scale: isometric gradient propagation at
    initialization. The rule is ours, derived from paper E's principle (``docs/cnn.md``).

    ``current``: the layer's present count. Counts whose gain is within ``tolerance``
    (relative) of the best are indistinguishable to the derivation; among them the one
    nearest ``current`` (in log scale) is chosen, so a layer changes only as far as the
    derivation can tell counts apart. Without ``current``, the strict best. A count that
    leaves two or fewer elements per group passes no gradient and is never chosen.
    """
    _check_channels_groups(channels, current)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a non-negative float, got {tolerance}")

    def distance(groups: int) -> float:
        gain = gn_block_gain(
            channels,
            groups,
            spatial_size,
            input_mean_square=input_mean_square,
            input_mean_fraction=input_mean_fraction,
            activation=activation,
        )
        return abs(math.log(gain)) if gain > 0 else math.inf

    distances = {groups: distance(groups) for groups in divisors(channels)}
    best = min(distances.values())
    if best == math.inf:
        raise ValueError(
            f"channels={channels} x spatial_size={spatial_size} leaves at most 2 elements in "
            "any group: GroupNorm then outputs a constant and passes no gradient"
        )
    if current is None:
        return min(distances, key=distances.get)
    # among the counts the derivation cannot tell from the best, the least change
    indistinct = [g for g, d in distances.items() if d <= best + math.log1p(tolerance)]
    return min(indistinct, key=lambda g: (abs(math.log(g / current)), g))


def set_gn_groups(model: nn.Module, groups: Mapping[str, int]) -> nn.Module:
    """Set the group count of every GroupNorm of ``model`` from ``{module name: count}``
    (e.g. ``GNCalibration.groups()`` saved from :func:`gn_calibrate`).

    The table must name exactly the model's GroupNorms, each with a divisor of its channels:
    anything else is a ValueError that names the layers, and nothing is changed.
    """
    norms = {name: m for name, m in model.named_modules() if isinstance(m, nn.GroupNorm)}
    unknown, missing = sorted(set(groups) - set(norms)), sorted(set(norms) - set(groups))
    if unknown or missing:
        raise ValueError(
            f"groups must name exactly the model's GroupNorm layers; unknown: {unknown or 'none'}"
            f", missing: {missing or 'none'}"
        )
    for name, count in groups.items():
        try:
            _check_channels_groups(norms[name].num_channels, count)
        except ValueError as error:
            raise ValueError(f"groups[{name!r}]: {error}") from None
    for name, count in groups.items():
        norms[name].num_groups = count
    return model


@dataclass
class GNLayerCalibration:
    """One GroupNorm of a calibrated model: its measured block statistics and group counts."""

    name: str
    channels: int
    spatial_size: tuple[int, int]
    input_mean_square: float
    input_mean_fraction: float
    activation_gain: float
    groups_before: int
    groups: int

    def gain(self, groups: int | None = None) -> float:
        """Predicted block gradient gain with ``groups`` (default: the chosen count)."""
        return gn_block_gain(
            self.channels,
            self.groups if groups is None else groups,
            self.spatial_size,
            input_mean_square=self.input_mean_square,
            input_mean_fraction=self.input_mean_fraction,
            activation=self.activation_gain,
        )


@dataclass
class GNCalibration:
    """What :func:`gn_calibrate` chose, per GroupNorm in forward order."""

    layers: list[GNLayerCalibration]
    skipped: dict[str, str]  # GroupNorms not fed by a conv, with the reason

    def groups(self) -> dict[str, int]:
        return {layer.name: layer.groups for layer in self.layers}

    def __str__(self) -> str:
        rows = [
            "| layer | C | HxW | E[x_in^2] | rho | kappa | G before | gain before | G | gain |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for layer in self.layers:
            h, w = layer.spatial_size
            rows.append(
                f"| {layer.name} | {layer.channels} | {h}x{w} | {layer.input_mean_square:.3f} "
                f"| {layer.input_mean_fraction:.3f} | {layer.activation_gain:.3f} "
                f"| {layer.groups_before} | {layer.gain(layer.groups_before):.3f} "
                f"| {layer.groups} | {layer.gain():.3f} |"
            )
        rows += [f"| {name} | skipped: {why} |" for name, why in self.skipped.items()]
        return "\n".join(rows)


_PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout2d)


@dataclass
class _Call:
    """One module call. Tensor versions tell apart a tensor object from its in-place edits
    (``x += shortcut`` after a norm must not read as the norm feeding the next module)."""

    name: str
    module: nn.Module
    input: torch.Tensor | None
    input_version: int = -1  # at entry
    output: torch.Tensor | None = None
    output_version: int = -1  # at exit

    def reads(self, tensor: torch.Tensor, version: int) -> bool:
        return self.input is tensor and self.input_version == version


def _record_calls(model: nn.Module, x: torch.Tensor) -> list[_Call]:
    """Leaf modules and GroupNorms in the order they were entered, with input and output."""
    calls: list[_Call] = []
    running: dict[int, list[_Call]] = {}

    def enter(name):
        def hook(module, args):
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            call = _Call(name, module, first, first._version if first is not None else -1)
            if first is not None and isinstance(module, nn.Conv2d):
                call.input = first.detach().clone()  # its values, whatever happens later
            calls.append(call)
            running.setdefault(id(module), []).append(call)

        return hook

    def leave(module, args, output):
        call = running[id(module)].pop()
        if isinstance(output, torch.Tensor):
            call.output, call.output_version = output, output._version

    inside_gn = {
        f"{name}.{child}" if name else child
        for name, m in model.named_modules()
        if isinstance(m, nn.GroupNorm)
        for child, _ in m.named_modules()
        if child
    }
    handles = []
    for name, module in model.named_modules():
        is_leaf = not any(True for _ in module.children())
        if name not in inside_gn and (is_leaf or isinstance(module, nn.GroupNorm)):
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


@dataclass
class _GNBlock:
    name: str
    norm: nn.GroupNorm
    spatial_size: tuple[int, int]
    conv_input: torch.Tensor | None = None  # None: not fed by a conv
    activation: nn.Module | None = None
    skip_reason: str = ""


def _gn_blocks(model: nn.Module, x: torch.Tensor) -> list[_GNBlock]:
    """Every GroupNorm that ran, with its conv's input and the activation after it."""
    calls = _record_calls(model, x)
    producers = {(id(c.output), c.output_version): c for c in calls if c.output is not None}
    blocks = []
    for index, call in enumerate(calls):
        if not isinstance(call.module, nn.GroupNorm) or call.input is None:
            continue
        block = _GNBlock(call.name, call.module, tuple(call.input.shape[2:]))
        producer = producers.get((id(call.input), call.input_version))
        if producer is None or not isinstance(producer.module, nn.Conv2d):
            kind = type(producer.module).__name__ if producer else "a non-module operation"
            block.skip_reason = f"fed by {kind}, not a Conv2d"
            blocks.append(block)
            continue
        block.conv_input = producer.input
        block.activation = getattr(call.module, "act", None)  # timm's GroupNormAct
        if block.activation is None:
            block.activation = _following_activation(calls[index + 1 :], call)
        blocks.append(block)
    return blocks


def _following_activation(later_calls: list[_Call], norm_call: _Call) -> nn.Module:
    """The parameter-free, shape-keeping module that reads the norm's output as it left the
    norm (through identities and dropouts); identity when the output goes anywhere else
    first (an add, a conv)."""
    tensor, version = norm_call.output, norm_call.output_version
    for call in later_calls:
        if not call.reads(tensor, version):
            continue
        if isinstance(call.module, _PASS_THROUGH):
            tensor, version = call.output, call.output_version
            continue
        parameter_free = not any(True for _ in call.module.parameters())
        if parameter_free and call.output is not None and call.output.shape == tensor.shape:
            return call.module
        break
    return nn.Identity()


def gn_calibrate(
    model_or_builder: nn.Module | Callable[[], nn.Module],
    input_size: Sequence[int],
    *,
    batch_size: int = 2,
    seed: int = 0,
    inputs: torch.Tensor | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    sequential: bool = True,
) -> tuple[nn.Module, GNCalibration]:
    """Set every ``conv -> GroupNorm`` layer of a model to its ideal group count (ours).

    The model (or the model ``model_or_builder()`` returns) is run at initialization on seeded
    Gaussian noise of ``(batch_size, *input_size)`` (or on ``inputs``, e.g. real images); for
    each GroupNorm fed by a conv, in forward order, the conv input's ``E[x^2]`` and ``rho``
    and the following activation are measured and :func:`ideal_groups` picks the count
    (keeping the present one within ``tolerance``). A change re-measures everything
    downstream before the next layer is decided. Only ``num_groups`` changes: the state dict
    (and so any checkpoint) is untouched, though the function is not.

    ``sequential=False`` decides every layer from one forward pass (fast, for a report; later
    layers then do not see the new counts of earlier ones).

    Returns the model (in its original train/eval mode) and a :class:`GNCalibration` report.
    """
    model = _resolve_model(model_or_builder)
    input_size = tuple(input_size)
    if len(input_size) != 3 or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_size
    ):
        raise ValueError(
            f"input_size must be (channels, height, width) of positive ints, got {input_size}"
        )
    if inputs is None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn((batch_size, *input_size), generator=generator)
    elif tuple(inputs.shape[1:]) != input_size:
        raise ValueError(
            f"inputs has shape {tuple(inputs.shape)}, expected (N, *input_size={input_size})"
        )
    parameter = next(model.parameters(), None)
    if parameter is not None:
        inputs = inputs.to(device=parameter.device, dtype=parameter.dtype)

    was_training = model.training
    model.eval()  # no dropout noise; GroupNorm itself behaves the same in both modes
    layers: list[GNLayerCalibration] = []
    skipped: dict[str, str] = {}
    try:
        decided: set[str] = set()
        pending = _gn_blocks(model, inputs)
        while pending:
            block = pending.pop(0)
            if block.name in decided:
                continue
            decided.add(block.name)
            if block.skip_reason:
                skipped[block.name] = block.skip_reason
                continue
            layer = _calibrate_layer(block, tolerance)
            layers.append(layer)
            if layer.groups != layer.groups_before:
                block.norm.num_groups = layer.groups
                if sequential:  # every later layer now sees a different input: measure again
                    pending = _gn_blocks(model, inputs)
    finally:
        model.train(was_training)
    return model, GNCalibration(layers, skipped)


def _resolve_model(model_or_builder) -> nn.Module:
    if isinstance(model_or_builder, nn.Module):
        return model_or_builder
    if not callable(model_or_builder):
        raise TypeError(
            "model_or_builder must be an nn.Module or a callable returning one, "
            f"got {type(model_or_builder).__name__}"
        )
    model = model_or_builder()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_or_builder() must return an nn.Module, got {type(model).__name__}")
    return model


def _calibrate_layer(block: _GNBlock, tolerance: float) -> GNLayerCalibration:
    x = block.conv_input.double()
    mean_square = x.square().mean().item()
    mean_fraction = x.mean(dim=(2, 3)).square().mean().item() / mean_square
    kappa = activation_gain(block.activation)
    channels, current = block.norm.num_channels, block.norm.num_groups
    groups = ideal_groups(
        channels,
        block.spatial_size,
        input_mean_square=mean_square,
        input_mean_fraction=mean_fraction,
        activation=kappa,
        current=current,
        tolerance=tolerance,
    )
    return GNLayerCalibration(
        block.name,
        channels,
        block.spatial_size,
        mean_square,
        mean_fraction,
        kappa,
        current,
        groups,
    )
