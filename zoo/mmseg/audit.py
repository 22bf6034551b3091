"""``zoo audit CONFIG.py``: paper B's question for an mmseg config, the ASPP rates against
the crop size, answered on the model the config builds (on the meta device: instant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zoo.guidelines.atrous import atrous_rates, rate_report
from zoo.mmseg.build import build_for_inspection, crop_size_of, load_config


def audit_config(config: str | Path) -> dict[str, Any]:
    """For every head with ASPP branches: the feature map it sees at the training crop
    (measured with a forward hook), the output stride that implies, and the current and the
    resolution-aware rates with their spans and tap coverage."""
    cfg = load_config(config)
    crop = crop_size_of(cfg)
    model = build_for_inspection(cfg)
    heads = {
        name: module
        for name, module in model.named_children()
        if hasattr(module, "aspp_modules") and hasattr(module, "dilations")
    }
    seen: dict[str, tuple[int, int]] = {}

    def recorder(name: str):
        def record(module, args, output) -> None:  # None: the output stays as it is
            seen.setdefault(name, tuple(args[0].shape[-2:]))

        return record

    hooks = [head.aspp_modules.register_forward_hook(recorder(n)) for n, head in heads.items()]
    try:
        with torch.no_grad():
            model(torch.zeros((1, 3, *crop), device="meta"), mode="tensor")
    finally:
        for hook in hooks:
            hook.remove()
    report: dict[str, Any] = {"config": str(config), "crop_size": list(crop), "heads": []}
    for name, head in heads.items():
        feature = seen[name]
        stride = max(1, round(crop[0] / feature[0]))
        current = [d for d in head.dilations if d != 1]
        derived = list(atrous_rates(crop, stride, num_rates=len(current) or 3))
        report["heads"].append(
            {
                "head": name,
                "type": type(head).__name__,
                "feature_size": list(feature),
                "output_stride": stride,
                "current": rate_report(crop, stride, current),
                "derived": rate_report(crop, stride, derived),
                "follows_guideline": current == derived,
            }
        )
    report["applies"] = bool(report["heads"])
    return report


def format_config_audit(report: dict[str, Any]) -> str:
    lines = [
        f"audit of {report['config']} (crop {report['crop_size'][0]}x{report['crop_size'][1]})"
    ]
    if not report["heads"]:
        lines.append("B ASPP rates: no ASPP head in this config")
    for head in report["heads"]:
        h, w = head["feature_size"]
        lines.append(
            f"B ASPP rates of {head['head']} ({head['type']}): feature map {h}x{w}, output "
            f"stride {head['output_stride']}"
        )
        for which in ("current", "derived"):
            cells = ", ".join(
                f"{r['rate']} ({'fits' if r['fits'] else 'exceeds the map'}, taps inside "
                f"{r['tap_coverage']:.2f})"
                for r in head[which]
            )
            lines.append(f"  {which:<8} {cells}")
        lines.append(
            "  follows the guideline"
            if head["follows_guideline"]
            else "  fix: type='ResolutionAwareASPPHead', dilations='auto', crop_size=..., "
            f"output_stride={head['output_stride']} (zoo.mmseg)"
        )
    return "\n".join(lines)
