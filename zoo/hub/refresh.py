"""``zoo registry refresh``: the measured fields of the registry (parameter count, GFLOPs),
filled in by measuring the registered models rather than by hand.

``params_m``: parameters, in millions, of the model built with its defaults (for mmseg
variants the whole segmentor, auxiliary head included). ``gflops``: floating-point operations
of one inference forward of one image, counted by ``torch.utils.flop_counter`` (a multiply-add
counts as two), in billions: at the default input size of a timm variant's pretrained cfg, at
the training crop of an mmseg variant's config (``mode='tensor'``: the decode head only).
Models are built and run on the ``meta`` device: shapes only, no arithmetic, so measuring a
DeepLabV3 at 512x1024 takes a fraction of a second. Rounded to 3 decimals.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from zoo.hub.registry import Variant, forget_loaded_registry, load_registry


def _count(model: torch.nn.Module, run) -> dict[str, float]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        run(model)
    return {
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "gflops": round(counter.get_total_flops() / 1e9, 3),
    }


def measure_timm(name: str) -> dict[str, float]:
    import timm

    import zoo.models  # noqa: F401  (registers the variants)

    with torch.device("meta"):
        model = timm.create_model(name).eval()
    size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    return _count(model, lambda m: m(torch.zeros((1, *size), device="meta")))


def measure_mmseg(config: str) -> dict[str, float]:
    from zoo.mmseg.build import build_for_inspection, crop_size_of, load_config

    cfg = load_config(config)
    model = build_for_inspection(cfg)
    crop = crop_size_of(cfg)
    return _count(model, lambda m: m(torch.zeros((1, 3, *crop), device="meta"), mode="tensor"))


def measure(variant: Variant) -> dict[str, float]:
    """``{'params_m': ..., 'gflops': ...}`` of a registered variant."""
    if variant.family == "mmseg":
        return measure_mmseg(variant.config)
    return measure_timm(variant.name)


def refresh_registry(directory: str | Path | None = None, check: bool = False) -> list[str]:
    """Measure every variant and write ``params_m`` / ``gflops`` into its file (or, with
    ``check``, only report). Returns one line per value that was (or would be) changed."""
    registry = load_registry(directory)
    changes = []
    for variant in registry:
        measured = measure(variant)
        recorded = {"params_m": variant.params_m, "gflops": variant.gflops}
        changed = {k: v for k, v in measured.items() if recorded[k] != v}
        if not changed:
            continue
        changes += [f"{variant.name}.{k}: {recorded[k]} -> {v}" for k, v in changed.items()]
        if not check:
            data = json.loads(variant.path.read_text(encoding="utf-8"))
            data.update(measured)
            variant.path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if changes and not check:
        forget_loaded_registry()
    return changes
