"""Contrast robustness (paper G, arXiv 2111.08413) and a few common corruptions.

Every corruption acts on images in the model's normalized input space ``x = (p - mean) /
std`` and is defined by what it does to the pixels ``p``:

``contrast``       ``p -> mean + c (p - mean)``: the colour scale around the normalization
                   mean, i.e. ``x -> c x``. PreLayerNorm patch embeddings are exactly
                   invariant to it (paper G's claim); plain ViTs are not.
``brightness``     ``p -> p + b``.
``gaussian_noise`` ``p -> p + s n``, ``n ~ N(0, 1)`` (seeded).
``gaussian_blur``  a Gaussian blur of standard deviation ``sigma`` pixels (torchvision); it
                   commutes with the per-channel normalization.

Pixels are not clipped to [0, 1], so the contrast sweep measures the scale invariance itself.
We implement these few with torch/torchvision: the maintained corruption package
(``imagecorruptions``) works on uint8 images and re-quantizes, which would blur exactly the
invariance being measured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.analysis.erf import IMAGE_SUFFIXES, default_input_size, noise_images


def _data_std(model: nn.Module) -> Tensor:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), dtype=torch.float32)[:, None, None]


def contrast(x: Tensor, factor: float, model: nn.Module, generator) -> Tensor:
    return x * factor


def brightness(x: Tensor, shift: float, model: nn.Module, generator) -> Tensor:
    return x + shift / _data_std(model).to(x)


def gaussian_noise(x: Tensor, sigma: float, model: nn.Module, generator) -> Tensor:
    noise = torch.randn(x.shape, generator=generator).to(x)
    return x + sigma * noise / _data_std(model).to(x)


def gaussian_blur(x: Tensor, sigma: float, model: nn.Module, generator) -> Tensor:
    from torchvision.transforms.v2.functional import gaussian_blur as blur

    if sigma == 0:
        return x
    size = 2 * int(3 * sigma + 0.5) + 1
    return blur(x, kernel_size=[size, size], sigma=[sigma, sigma])


_CORRUPTION_SEED_OFFSET = 1_000_003

Corruption = Callable[[Tensor, float, nn.Module, torch.Generator], Tensor]
CORRUPTIONS: dict[str, tuple[Corruption, tuple[float, ...]]] = {
    # name: (function, default levels); the identity level is always measured too
    "contrast": (contrast, (0.1, 0.25, 0.5, 2.0, 4.0, 10.0)),
    "brightness": (brightness, (-0.4, -0.2, 0.2, 0.4)),
    "gaussian_noise": (gaussian_noise, (0.05, 0.1, 0.2)),
    "gaussian_blur": (gaussian_blur, (0.5, 1.0, 2.0)),
}


@dataclass
class SweepRow:
    corruption: str
    level: float
    agreement: float  # top-1 equal to the clean image's top-1
    accuracy: float | None  # when labels are known
    max_output_change: float  # max |f(corrupted) - f(clean)| / max |f(clean)|


@dataclass
class RobustnessReport:
    name: str
    clean_accuracy: float | None
    rows: list[SweepRow]

    def table(self) -> str:
        lines = [f"{self.name}: clean accuracy {_fmt(self.clean_accuracy)}"]
        lines.append("  corruption      level    agreement  accuracy  max output change")
        for r in self.rows:
            lines.append(
                f"  {r.corruption:<15} {r.level:<8g} {r.agreement:<10.3f} {_fmt(r.accuracy):<9} "
                f"{r.max_output_change:.3g}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "clean_accuracy": self.clean_accuracy,
            "rows": [r.__dict__ for r in self.rows],
        }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def load_labelled_images(
    folder: str | Path, model: nn.Module, limit: int | None = None
) -> tuple[Tensor, Tensor | None]:
    """Images under ``folder`` transformed as timm evaluates ``model``; labels when every
    image sits in a sub-folder named by an integer class index of the model's head."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"images: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ValueError(f"images: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    transform = create_transform(**resolve_data_config({}, model=model))
    x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    parents = [f.parent.name for f in files]
    labelled = all(
        f.parent != folder and name.isdigit() for f, name in zip(files, parents, strict=True)
    )
    labels = torch.tensor([int(name) for name in parents]) if labelled else None
    return x, labels


@torch.no_grad()
def robustness_sweep(
    model: nn.Module,
    images: Tensor | None = None,
    labels: Tensor | None = None,
    *,
    name: str = "model",
    corruptions: Mapping[str, Sequence[float]] | None = None,
    num_images: int = 16,
    seed: int = 0,
    batch_size: int = 32,
) -> RobustnessReport:
    """Top-1 agreement with the clean prediction (and accuracy, given ``labels``) and the
    largest relative output change, for each corruption level.

    ``images``: (N, C, H, W) in the model's input space; None for ``num_images`` seeded
    Gaussian images of the model's input size. ``corruptions``: ``{name: levels}`` over
    ``CORRUPTIONS`` (default: all, default levels).
    """
    chosen = {k: v for k, (_, v) in CORRUPTIONS.items()} if corruptions is None else corruptions
    unknown = sorted(set(chosen) - set(CORRUPTIONS))
    if unknown:
        raise ValueError(f"corruptions: unknown {unknown}; choose from {', '.join(CORRUPTIONS)}")
    if images is None:
        images = noise_images(num_images, default_input_size(model), seed)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries for {len(images)} images")
    was_training = model.training
    model.eval()
    try:
        clean = _outputs(model, images, batch_size)
        scale = clean.abs().max().clamp(min=torch.finfo(clean.dtype).tiny)
        clean_top1 = clean.argmax(dim=1)
        rows = []
        for corruption, levels in chosen.items():
            function = CORRUPTIONS[corruption][0]
            for level in levels:
                # offset: generated images use `seed` itself, and noise equal to the image
                # would be a pure rescaling
                generator = torch.Generator().manual_seed(seed + _CORRUPTION_SEED_OFFSET)
                out = _outputs(model, function(images, float(level), model, generator), batch_size)
                top1 = out.argmax(dim=1)
                rows.append(
                    SweepRow(
                        corruption,
                        float(level),
                        (top1 == clean_top1).double().mean().item(),
                        None if labels is None else (top1 == labels).double().mean().item(),
                        ((out - clean).abs().max() / scale).item(),
                    )
                )
    finally:
        model.train(was_training)
    accuracy = None if labels is None else (clean_top1 == labels).double().mean().item()
    return RobustnessReport(name, accuracy, rows)


def _outputs(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    parameter = next(model.parameters(), None)
    if parameter is not None:
        x = x.to(device=parameter.device, dtype=parameter.dtype)
    return (
        torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        .double()
        .cpu()
    )


def save_plot(reports: Sequence[RobustnessReport], path: str | Path) -> Path:
    """Agreement with the clean prediction against the corruption level, one panel per
    corruption, one line per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    corruptions = list(dict.fromkeys(r.corruption for report in reports for r in report.rows))
    figure = Figure(figsize=(4 * len(corruptions), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(corruptions), squeeze=False)[0]
    for axis, corruption in zip(axes, corruptions, strict=True):
        for report in reports:
            rows = sorted(
                (r for r in report.rows if r.corruption == corruption), key=lambda r: r.level
            )
            axis.plot(
                [r.level for r in rows], [r.agreement for r in rows], marker="o", label=report.name
            )
        axis.set_title(corruption)
        axis.set_xlabel("level")
        axis.set_ylim(-0.05, 1.05)
        if corruption == "contrast":
            axis.set_xscale("log")
    axes[0].set_ylabel("top-1 agreement with clean")
    axes[-1].legend(fontsize=8)
    figure.savefig(path, dpi=100)
    return path
