"""``zoo registry refresh``: the measured fields of the registry (parameter count, GFLOPs),
filled in by measuring the registered models rather than by hand.

``params_m``: trainable and frozen parameters, in millions, of the model built with its
defaults. ``gflops``: floating-point operations of one forward of one image at the default
input size of its pretrained cfg, counted by ``torch.utils.flop_counter`` (a multiply-add
counts as two), in billions. Both rounded to 3 decimals.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from zoo.hub.registry import forget_loaded_registry, load_registry


def measure(name: str) -> dict[str, float]:
    """``{'params_m': ..., 'gflops': ...}`` of timm model ``name`` (zoo variants included)."""
    import timm
    from torch.utils.flop_counter import FlopCounterMode

    import zoo.models  # noqa: F401  (registers the variants)

    model = timm.create_model(name).eval()
    input_size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros((1, *input_size)))
    return {
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "gflops": round(counter.get_total_flops() / 1e9, 3),
    }


def refresh_registry(directory: str | Path | None = None, check: bool = False) -> list[str]:
    """Measure every timm variant and write ``params_m`` / ``gflops`` into its file (or, with
    ``check``, only report). Returns one line per value that was (or would be) changed."""
    registry = load_registry(directory)
    changes = []
    for variant in registry:
        if variant.family != "timm":
            continue
        measured = measure(variant.name)
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
