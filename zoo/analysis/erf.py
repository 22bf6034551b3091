"""Effective receptive field (ERF), as papers B, C and H measure it (arXiv 2108.13576, sec. 3).

For each image: take the target, the channel mean at the spatial centre of a feature map (or
the model's final output, averaged over its outputs: the dead pixel test); back-propagate it
to the input; average the input gradient over the colour channels; apply ReLU **per image**;
then average over images. The map is summarised by a 2-D Gaussian fit (sigma_x, sigma_y,
R^2), a checkerboard index and, where the model allows, the theoretical receptive field.

Batched: in eval mode the samples of a batch do not interact, so one backward of the batch
sum gives every image its own input gradient, and the per-image ReLU is applied to each of
those. ``erf(..., batched=False)`` is the one-image-at-a-time loop, kept to check that.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo._modules import replace_submodule

Target = str | int | Callable[[nn.Module, torch.Tensor], torch.Tensor]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class GaussianFit:
    """``amplitude * exp(-(x-x0)^2 / (2 sigma_x^2) - (y-y0)^2 / (2 sigma_y^2))`` fitted to a map
    (pixels; x along width). ``r2``: the fit's coefficient of determination."""

    sigma_x: float
    sigma_y: float
    r2: float
    x0: float
    y0: float
    amplitude: float


@dataclass
class ERFResult:
    """An effective receptive field and its summaries.

    ``map``: (H, W) float64, the mean over images of ReLU(channel-mean input gradient).
    ``normalized``: ``map`` scaled to sum to 1 (all zeros if the map is).
    """

    map: torch.Tensor
    target: str
    num_images: int
    gaussian: GaussianFit
    checkerboard: dict[str, float]
    theoretical_rf: int | None = None  # pixels; None where not computable (e.g. attention)
    theoretical_rf_exceeds_input: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def normalized(self) -> torch.Tensor:
        total = self.map.sum()
        return self.map / total if total > 0 else self.map.clone()

    def summary(self) -> dict[str, Any]:
        rf = self.theoretical_rf
        return {
            "target": self.target,
            "num_images": self.num_images,
            "size": list(self.map.shape),
            "sigma_x": self.gaussian.sigma_x,
            "sigma_y": self.gaussian.sigma_y,
            "r2": self.gaussian.r2,
            "checkerboard_index": self.checkerboard["index"],
            "theoretical_rf": rf,
            "theoretical_rf_exceeds_input": self.theoretical_rf_exceeds_input,
        }

    def title(self) -> str:
        g = self.gaussian
        text = (
            f"ERF of {self.target} ({self.num_images} images): sigma {g.sigma_x:.1f} x "
            f"{g.sigma_y:.1f} px, R^2 {g.r2:.3f}, checkerboard {self.checkerboard['index']:.3f}"
        )
        if self.theoretical_rf is not None:
            bound = ">=" if self.theoretical_rf_exceeds_input else ""
            text += f", theoretical RF {bound}{self.theoretical_rf} px"
        return text

    def save_png(self, path: str | Path, name: str = "") -> Path:
        """The map in linear and log scale side by side, with colorbars and the numbers."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        values = self.normalized.numpy()
        figure = Figure(figsize=(10, 4.6), layout="constrained")
        FigureCanvasAgg(figure)
        linear, log = figure.subplots(1, 2)
        image = linear.imshow(values, cmap="viridis")
        figure.colorbar(image, ax=linear, shrink=0.8)
        linear.set_title("linear")
        positive = values[values > 0]
        if positive.size:
            floor = max(positive.min(), positive.max() * 1e-6)
            image = log.imshow(
                values.clip(min=floor), cmap="viridis", norm=LogNorm(floor, positive.max())
            )
            figure.colorbar(image, ax=log, shrink=0.8)
        log.set_title("log")
        figure.suptitle(f"{name + ': ' if name else ''}{self.title()}", fontsize=9)
        figure.savefig(path, dpi=100)
        return path


# ---------------------------------------------------------------------------------- inputs


def noise_images(count: int, input_size: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """Seeded standard-normal images (already in the model's normalized input space)."""
    if count < 1:
        raise ValueError(f"count must be a positive int, got {count}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((count, *input_size), generator=generator)


def load_images(folder: str | Path, model: nn.Module, limit: int | None = None) -> torch.Tensor:
    """Images of ``folder`` (recursively, sorted), transformed as timm evaluates ``model``
    (data config resolved from its pretrained cfg)."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"images must be a folder of images, a tensor or None; {folder} is not")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None:
        files = files[:limit]
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    transform = create_transform(**resolve_data_config({}, model=model))
    return torch.stack([transform(Image.open(f).convert("RGB")) for f in files])


def default_input_size(model: nn.Module) -> tuple[int, int, int]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("input_size", (3, 224, 224)))


def resolve_images(
    model: nn.Module,
    images: torch.Tensor | str | Path | None,
    num_images: int,
    input_size: tuple[int, int, int] | None,
    seed: int,
) -> torch.Tensor:
    if images is None:
        return noise_images(num_images, input_size or default_input_size(model), seed)
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"images tensor must be (N, C, H, W), got shape {tuple(images.shape)}")
        return images
    return load_images(images, model, limit=num_images)


# ---------------------------------------------------------------------------------- targets


def _centre_channel_mean(features: torch.Tensor) -> torch.Tensor:
    """Per-image scalar: channel mean at the spatial centre (``H//2, W//2``: for an even grid
    the lower-right of the four central positions) of an NCHW map, or the mean of an (N, K)
    output."""
    if features.ndim == 4:
        return features[:, :, features.shape[2] // 2, features.shape[3] // 2].mean(dim=1)
    if features.ndim == 2:
        return features.mean(dim=1)
    raise ValueError(
        f"the ERF target must be an NCHW feature map or an (N, K) output, got shape "
        f"{tuple(features.shape)} (for token sequences pick a stage index: timm's "
        "forward_intermediates returns the token grid without prefix tokens)"
    )


def _target_features(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    if callable(target) and not isinstance(target, nn.Module):
        return target(model, x)
    if target == "output":
        return model(x)
    if isinstance(target, bool) or not isinstance(target, int | str):
        raise ValueError(
            "target must be 'output', a stage index (timm forward_intermediates), a module "
            f"name or a callable(model, x), got {target!r}"
        )
    if isinstance(target, int):
        if not hasattr(model, "forward_intermediates"):
            raise ValueError(
                f"target={target}: a stage index needs timm's forward_intermediates, which "
                f"{type(model).__name__} lacks; pass a module name or a callable"
            )
        # timm drops prefix (class/register) tokens and returns ViT tokens as an NCHW grid
        return model.forward_intermediates(
            x, indices=[target], intermediates_only=True, stop_early=True
        )[0]
    modules = dict(model.named_modules())
    if target not in modules:
        raise ValueError(
            f"target={target!r} is not a module of the model (e.g. {', '.join(list(modules)[1:6])})"
        )
    captured = []
    handle = modules[target].register_forward_hook(lambda m, a, out: captured.append(out))
    try:
        model(x)
    finally:
        handle.remove()
    return captured[0]


def describe_target(target: Target) -> str:
    if callable(target) and not isinstance(target, nn.Module):
        return getattr(target, "__name__", "custom target")
    return (
        "output" if target == "output" else f"stage {target}" if isinstance(target, int) else target
    )


@contextmanager
def input_gradient_only(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients (the backward computes only what reaches the
    input: about one forward's cost instead of two); every module's mode and every
    parameter's flag are restored afterwards, one by one."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def input_gradients(
    model: nn.Module, x: torch.Tensor, target: Target = "output"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-image ReLU(colour-mean input gradient) (N, H, W), per-image target values (N,))
    from one backward of the batch sum. Call inside :func:`input_gradient_only`."""
    x = x.detach().clone().requires_grad_(True)
    values = _centre_channel_mean(_target_features(model, x, target))
    (grad,) = torch.autograd.grad(values.sum(), x)
    return grad.mean(dim=1).relu(), values.detach()


# --------------------------------------------------------------------------------- summaries


def gaussian_fit(erf_map: torch.Tensor) -> GaussianFit:
    """Least-squares 2-D Gaussian (scipy ``curve_fit``) started from the map's moments."""
    import numpy as np
    from scipy.optimize import curve_fit

    values = erf_map.double().numpy()
    height, width = values.shape
    total = values.sum()
    if not np.isfinite(total) or total <= 0:
        nan = float("nan")
        return GaussianFit(nan, nan, nan, nan, nan, 0.0)
    ys, xs = np.mgrid[0:height, 0:width]
    x0, y0 = (values * xs).sum() / total, (values * ys).sum() / total
    sx = math.sqrt(max((values * (xs - x0) ** 2).sum() / total, 0.25))
    sy = math.sqrt(max((values * (ys - y0) ** 2).sum() / total, 0.25))

    def model(coords, amplitude, cx, cy, sigma_x, sigma_y):
        x, y = coords
        return amplitude * np.exp(
            -((x - cx) ** 2) / (2 * sigma_x**2) - (y - cy) ** 2 / (2 * sigma_y**2)
        )

    coords = np.vstack([xs.ravel(), ys.ravel()])
    scale = values.max()
    try:
        params, _ = curve_fit(
            model, coords, values.ravel() / scale, p0=(1.0, x0, y0, sx, sy), maxfev=20000
        )
    except RuntimeError:  # no convergence: report the moment estimate, with its R^2
        params = np.array([1.0, x0, y0, sx, sy])
    amplitude, cx, cy, sigma_x, sigma_y = params
    fitted = model(coords, *params) * scale
    residual = ((values.ravel() - fitted) ** 2).sum()
    spread = ((values - values.mean()) ** 2).sum()
    r2 = 1 - residual / spread if spread > 0 else float("nan")
    return GaussianFit(
        float(abs(sigma_x)), float(abs(sigma_y)), float(r2), float(cx), float(cy),
        float(amplitude * scale),
    )  # fmt: skip


def checkerboard_index(erf_map: torch.Tensor, period: int = 2) -> dict[str, float]:
    """How much the map alternates from pixel to pixel (ours; see docs/analysis.md).

    ``index``: the spread of the map's mean over the ``period x period`` position classes
    (``map[a::p, b::p]``), ``(max - min) / mean``. Odd kernels with stride 2 cover pixels of
    one parity with more taps than the other (a 7x7/s2 conv: 16, 12, 12 or 9 taps), which is
    the dead-pixel checkerboard; each class mean averages ``HW/p^2`` pixels, so per-pixel noise
    (large with few images and random weights) cancels while the pattern stays. About 0 for a
    smooth map.

    Also ``first`` and ``second``, the mean absolute first and second differences along x and
    y, and ``difference_ratio = second / first`` (2 for a pure checkerboard, about 2/sigma for
    a smooth Gaussian, but dominated by noise unless the map is averaged over many images).
    """
    if isinstance(period, bool) or not isinstance(period, int) or period < 2:
        raise ValueError(f"period must be an int >= 2, got {period!r}")
    m = erf_map.double()
    first = torch.cat([m.diff(dim=0).abs().flatten(), m.diff(dim=1).abs().flatten()]).mean()
    second = torch.cat(
        [m.diff(n=2, dim=0).abs().flatten(), m.diff(n=2, dim=1).abs().flatten()]
    ).mean()
    classes = torch.stack(
        [m[a::period, b::period].mean() for a in range(period) for b in range(period)]
    )
    mean = classes.mean()
    nan = float("nan")
    return {
        "index": ((classes.max() - classes.min()) / mean).item() if mean > 0 else nan,
        "first": first.item(),
        "second": second.item(),
        "difference_ratio": (second / first).item() if first > 0 else nan,
    }


_NOT_LINEARIZABLE = (nn.GroupNorm, nn.LayerNorm, nn.MultiheadAttention)


def theoretical_receptive_field(
    model: nn.Module, input_size: tuple[int, int, int], target: Target = "output"
) -> tuple[int | None, bool, str]:
    """The theoretical receptive field of the target (pixels, the larger of height and
    width), whether it reaches past the input (then the true one is larger), and a note.

    Computed as the support of the input gradient of a linearized copy: every conv averages
    (weights ``1/fan_in``), max-pools become average pools of the same geometry, batch norms
    are identities and the input is positive, so every activation is positive and every path
    from the target to the input carries gradient. Models with attention or data-dependent
    normalization (LayerNorm, GroupNorm) have no such linearization: ``None``.
    """
    attention = [n for n, m in model.named_modules() if "attention" in type(m).__name__.lower()]
    norms = [n for n, m in model.named_modules() if isinstance(m, _NOT_LINEARIZABLE)]
    if attention:
        return None, False, "attention: every patch can reach every output (global)"
    if norms:
        return None, False, f"{type(model.get_submodule(norms[0])).__name__} layers: not computable"
    probe = copy.deepcopy(model).double().eval()
    for name, module in list(probe.named_modules()):
        if isinstance(module, nn.modules.conv._ConvNd):
            fan_in = module.weight[0].numel()
            nn.init.constant_(module.weight, 1.0 / fan_in)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.constant_(module.weight, 1.0 / module.in_features)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()  # running mean 0, var 1, weight 1, bias 0
        elif isinstance(module, nn.MaxPool2d):
            average = nn.AvgPool2d(
                module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode
            )
            replace_submodule(probe, name, average)
    x = torch.ones((1, *input_size), dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        values = _centre_channel_mean(_target_features(probe, x, target))
        (grad,) = torch.autograd.grad(values.sum(), x)
    support = grad[0].abs().sum(dim=0) > 0
    rows = support.any(dim=1).nonzero().flatten()
    cols = support.any(dim=0).nonzero().flatten()
    if rows.numel() == 0:
        return None, False, "no gradient reaches the input"
    height = (rows.max() - rows.min() + 1).item()
    width = (cols.max() - cols.min() + 1).item()
    exceeds = bool(
        rows.min() == 0
        or cols.min() == 0
        or rows.max() == input_size[1] - 1
        or cols.max() == input_size[2] - 1
    )
    note = "reaches the input border: the true RF is larger" if exceeds else ""
    return max(height, width), exceeds, note


# -------------------------------------------------------------------------------------- erf


def _foldable_conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv, batch norm) module names where the norm reads the conv's output and nothing
    else does, each module called once: folding the norm into the conv then changes nothing
    else. Found on torch.fx's graph; [] for models fx cannot trace."""
    from torch import fx

    try:
        graph = fx.symbolic_trace(model).graph
    except Exception:  # any untraceable forward (data-dependent control flow, ...)
        return []
    modules = dict(model.named_modules())
    calls = [n for n in graph.nodes if n.op == "call_module"]
    call_counts: dict[str, int] = {}
    for node in calls:
        call_counts[node.target] = call_counts.get(node.target, 0) + 1
    pairs = []
    for node in calls:
        source = node.args[0] if node.args else None
        if not (
            isinstance(modules[node.target], nn.BatchNorm2d)
            and isinstance(source, fx.Node)
            and source.op == "call_module"
            and type(modules[source.target]) is nn.Conv2d
            and len(source.users) == 1
            and call_counts[node.target] == call_counts[source.target] == 1
        ):
            continue
        pairs.append((source.target, node.target))
    return pairs


class PatchifyLinear(nn.Module):
    """A conv whose stride equals its kernel and that has no padding (a ViT patch embedding)
    as the matrix product it is: the same function, with an input gradient several times
    cheaper than the conv's on CPU (measured: 9 vs 24 ms for ViT-S/16's at batch 8)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.kernel_size = conv.kernel_size
        self.out_channels = conv.out_channels
        self.weight = nn.Parameter(conv.weight.detach().flatten(1), requires_grad=False)
        self.bias = conv.bias

    @staticmethod
    def applies(module: nn.Module) -> bool:
        return (
            type(module) is nn.Conv2d
            and module.kernel_size == module.stride
            and module.kernel_size != (1, 1)
            and module.padding == (0, 0)
            and module.dilation == (1, 1)
            and module.groups == 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (n, c, h, w) = self.kernel_size, x.shape
        gh, gw = h // kh, w // kw  # the conv drops a remainder the kernel does not fit
        patches = x[:, :, : gh * kh, : gw * kw].reshape(n, c, gh, kh, gw, kw)
        patches = patches.permute(0, 2, 4, 1, 3, 5).reshape(n, gh * gw, c * kh * kw)
        y = F.linear(patches, self.weight, self.bias)
        return y.transpose(1, 2).reshape(n, self.out_channels, gh, gw)


def _channels_last(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of ``conv`` whose weight is a channels_last copy (the original is untouched)."""
    new = copy.copy(conv)
    new._parameters = dict(conv._parameters)
    new.weight = nn.Parameter(
        conv.weight.detach().contiguous(memory_format=torch.channels_last), requires_grad=False
    )
    return new


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``conv`` followed by eval-mode ``bn`` as one conv (new weights; both untouched)."""
    new = copy.copy(conv)
    new._parameters = dict(conv._parameters)
    weight, bias = torch.nn.utils.fusion.fuse_conv_bn_weights(
        conv.weight.detach(), None if conv.bias is None else conv.bias.detach(),
        bn.running_mean, bn.running_var, bn.eps,
        None if bn.weight is None else bn.weight.detach(),
        None if bn.bias is None else bn.bias.detach(),
    )  # fmt: skip
    new.weight, new.bias = weight.requires_grad_(False), bias.requires_grad_(False)
    return new


def with_replaced_modules(model: nn.Module, replacements: dict[str, nn.Module]) -> nn.Module:
    """A copy of ``model``'s module tree with the named submodules replaced. Only the modules
    on the way to a replacement are copied (shallowly); every other module, parameter and
    buffer is ``model``'s own, so the copy costs next to nothing and ``model`` is unchanged."""
    root = copy.copy(model)
    root._modules = dict(model._modules)
    copied = {"": root}
    for name, new in replacements.items():
        *path, leaf = name.split(".")
        parent, prefix = root, ""
        for part in path:
            prefix = f"{prefix}.{part}" if prefix else part
            if prefix not in copied:
                child = copy.copy(parent._modules[part])
                child._modules = dict(child._modules)
                parent._modules[part] = copied[prefix] = child
            parent = copied[prefix]
        parent._modules[leaf] = new
    return root


def gradient_ready_copy(model: nn.Module, target: Target = "output") -> nn.Module:
    """A copy of ``model`` that computes the same function, faster to differentiate w.r.t.
    its input: every eval-mode BatchNorm that only reads a conv's output is folded into that
    conv (an affine map folded into a linear one; the norm becomes an Identity), conv nets
    use channels_last weights (faster convolutions on CPU), and patch-embedding convs become
    the matrix product they are (:class:`PatchifyLinear`). A module named as the target stays.
    Outputs agree with ``model``'s up to float rounding. Only replaced modules and their
    parents are new: ``model`` and everything not replaced are shared, never modified."""
    keep = target if isinstance(target, str) else None
    modules = dict(model.named_modules())
    replacements: dict[str, nn.Module] = {}
    if any(isinstance(m, nn.BatchNorm2d) for m in modules.values()):
        for conv_name, bn_name in _foldable_conv_bn_pairs(model):
            if keep not in (conv_name, bn_name):
                replacements[conv_name] = _folded(modules[conv_name], modules[bn_name])
                replacements[bn_name] = nn.Identity()
    convs = [n for n, m in modules.items() if type(m) is nn.Conv2d and n != keep]
    for name in convs:
        if PatchifyLinear.applies(modules[name]):
            replacements[name] = PatchifyLinear(replacements.get(name, modules[name]))
    if len(convs) > 1:  # a conv net, not only a patch embedding
        for name in convs:
            current = replacements.get(name, modules[name])
            if type(current) is nn.Conv2d:
                replacements[name] = _channels_last(current)
    return with_replaced_modules(model, replacements) if replacements else model


def erf_map_of(
    model: nn.Module,
    x: torch.Tensor,
    target: Target = "output",
    *,
    batch_size: int = 8,
    batched: bool = True,
    progress: bool = False,
    fold_norms: bool = True,
) -> torch.Tensor:
    """The ERF map alone (H, W), float64: the mean over the images ``x`` of the per-image
    ReLU(colour-mean input gradient) of ``target``. ``batched=False`` runs the papers'
    one-image-at-a-time loop (same map, slower). ``fold_norms``: differentiate
    :func:`gradient_ready_copy` of the model (same function, cheaper; ``model`` itself is
    left alone) instead of the model as given. :func:`erf` adds the summaries."""
    from tqdm.auto import tqdm

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    parameter = next(model.parameters(), None)
    if parameter is not None:
        x = x.to(device=parameter.device, dtype=parameter.dtype)
    if fold_norms and not callable(target):  # a callable target may reach into the modules
        model = gradient_ready_copy(model, target)
    step = batch_size if batched else 1
    total = torch.zeros(x.shape[2:], dtype=torch.float64)
    with input_gradient_only(model):
        for start in tqdm(range(0, len(x), step), desc="ERF", unit="batch", disable=not progress):
            per_image, _ = input_gradients(model, x[start : start + step], target)
            total += per_image.double().sum(dim=0).cpu()
    return total / len(x)


def erf(
    model: nn.Module,
    images: torch.Tensor | str | Path | None = None,
    target: Target = "output",
    *,
    num_images: int = 8,
    input_size: tuple[int, int, int] | None = None,
    seed: int = 0,
    batch_size: int = 8,
    batched: bool = True,
    progress: bool = True,
    receptive_field: bool = True,
) -> ERFResult:
    """The effective receptive field of ``target`` in ``model`` (see the module docstring).

    Args:
        images: a tensor (N, C, H, W) in the model's input space, a folder of images
            (transformed as timm evaluates the model; at most ``num_images``), or None for
            ``num_images`` seeded Gaussian images of ``input_size`` (default: the model's
            pretrained cfg).
        target: ``'output'`` (the dead pixel test), a stage index for timm's
            ``forward_intermediates`` (CNN stage or ViT block; ViT prefix tokens excluded),
            a module name whose output is NCHW, or ``callable(model, x) -> tensor``
            (e.g. segmentation logits). The scalar per image is the channel mean at the
            spatial centre, or the mean of an (N, K) output.
        batched: one backward per batch (default) or one per image (the papers' loop; same
            map, slower).
        receptive_field: also compute the theoretical receptive field.
    """
    x = resolve_images(model, images, num_images, input_size, seed)
    erf_map = erf_map_of(
        model, x, target, batch_size=batch_size, batched=batched, progress=progress
    )
    result = ERFResult(
        map=erf_map,
        target=describe_target(target),
        num_images=len(x),
        gaussian=gaussian_fit(erf_map),
        checkerboard=checkerboard_index(erf_map),
    )
    if receptive_field:
        rf, exceeds, note = theoretical_receptive_field(model, tuple(x.shape[1:]), target)
        result.theoretical_rf, result.theoretical_rf_exceeds_input = rf, exceeds
        if note:
            result.notes.append(note)
    return result
