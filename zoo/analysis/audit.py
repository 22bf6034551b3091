"""``zoo audit``: which guidelines apply to a model, and what each would change.

One pass over any timm model (or ``nn.Module``), on random weights unless the caller loads
pretrained ones; nothing in the caller's model is modified (every fix is tried on a copy):

H  odd-kernel / even-stride layers (dead-pixel risk) and what ``kernel_pad`` would convert;
D  dropout placement: branch dropout and head dropout against the guideline's positions;
F  the gamma categories and the decay groups ``gamma_decay_groups`` would build;
E  GroupNorm layers: current vs ideal group count (``gn_calibrate``, one pass);
C  ViT position handling: attention bias present or not;
G  patch-embedding scale invariance, measured: ``max |f(c x) - f(x)| / max |f(x)|``;
B  ASPP rates vs crop size: an mmseg config question (``zoo audit CONFIG.py``,
   ``zoo.mmseg.audit``), not one a timm model can answer.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from zoo.analysis.erf import default_input_size, noise_images
from zoo.guidelines.dropout import DropoutPlacedResNet, DropoutPlacedResNetV2
from zoo.guidelines.gamma_decay import CATEGORIES, POLICIES, classify_norms
from zoo.guidelines.gn_groups import gn_calibrate
from zoo.guidelines.kernel_pad import dead_pixel_layers, kernel_pad

# relative output change under input scaling below which a model counts as scale-invariant
# (float32 LayerNorm epsilon effects are ~1e-5; plain ViTs move by ~1e-1)
INVARIANCE_TOLERANCE = 1e-4
SCALES = (0.5, 2.0)
AUDIT_INPUT = 2  # images per measurement


def _dead_pixels(model: nn.Module) -> dict[str, Any]:
    layers = [
        {
            "name": name,
            "type": type(m).__name__,
            "kernel": list(nn.modules.utils._pair(m.kernel_size)),
            "stride": list(nn.modules.utils._pair(m.stride)),
        }
        for name, m in dead_pixel_layers(model)
    ]
    _, report = kernel_pad(copy.deepcopy(model), pools=True)
    return {
        "applies": bool(layers),
        "layers": layers,
        "fix": "zoo.guidelines.kernel_pad(model) (pools=False keeps the function exactly)",
        "kernel_pad_would_change": [c.name for c in report.changes],
        "kernel_pad_would_skip": dict(report.skipped),
    }


def _dropout(model: nn.Module) -> dict[str, Any]:
    dropouts = [
        {"name": n, "type": type(m).__name__, "p": m.p}
        for n, m in model.named_modules()
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
    ]
    placed = isinstance(model, DropoutPlacedResNet | DropoutPlacedResNetV2)
    head_rate = getattr(model, "drop_rate", None)
    resnet_like = type(model).__name__ in ("ResNet", "ResNetV2") or placed
    if placed:
        verdict = "follows guideline D (branch dropout before the last conv, head before pooling)"
    elif resnet_like:
        verdict = (
            "timm applies drop_rate after global pooling and has no branch dropout; guideline D "
            "puts one dropout per residual branch before its last conv and the head dropout "
            "before pooling: zoo.guidelines.place_dropout(model, branch_p, head_p)"
        )
    else:
        verdict = "guideline D concerns residual CNNs with batch norm (ResNet, ResNetV2)"
    return {
        "applies": resnet_like,
        "follows_guideline": placed,
        "head_drop_rate": head_rate,
        "dropout_modules": dropouts,
        "advice": verdict,
    }


def _gamma(model: nn.Module) -> dict[str, Any]:
    try:
        categories = classify_norms(model)
    except Exception as error:  # tracing can fail on exotic models: say so, do not crash
        return {"applies": False, "error": f"could not trace the model: {error}"}
    counts = {c: sum(v == c for v in categories.values()) for c in CATEGORIES}
    decayed = sorted(n for n, c in categories.items() if POLICIES["paper"][c])
    return {
        "applies": bool(categories),
        "counts": counts,
        "paper_policy_decays": len(decayed),
        "paper_policy_keeps": len(categories) - len(decayed),
        "fix": "zoo.guidelines.gamma_decay_groups(model, weight_decay, policy='paper')",
    }


def _group_norm(model: nn.Module, input_size) -> dict[str, Any]:
    if not any(isinstance(m, nn.GroupNorm) for m in model.modules()):
        return {"applies": False, "layers": []}
    _, calibration = gn_calibrate(
        copy.deepcopy(model), input_size, batch_size=AUDIT_INPUT, sequential=False
    )
    layers = [
        {
            "name": layer.name,
            "channels": layer.channels,
            "groups": layer.groups_before,
            "ideal_groups": layer.groups,
            "gain": layer.gain(layer.groups_before),
            "ideal_gain": layer.gain(),
        }
        for layer in calibration.layers
    ]
    return {
        "applies": True,
        "layers": layers,
        "would_change": sum(layer["groups"] != layer["ideal_groups"] for layer in layers),
        "skipped": calibration.skipped,
        "fix": "zoo.guidelines.gn_calibrate(model, input_size) (the rule is ours: docs/cnn.md)",
    }


def _attention_bias(model: nn.Module) -> dict[str, Any]:
    is_vit = hasattr(model, "patch_embed") and hasattr(model, "blocks")
    kinds = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if any(key in type(m).__name__ for key in ("RelPos", "GaussianAttentionBias"))
        }
    )
    return {
        "applies": is_vit,
        "attention_bias": kinds,
        "gaussian_bias": "GaussianAttentionBias" in kinds,
        "advice": (
            "has a Gaussian attention bias (guideline C)"
            if "GaussianAttentionBias" in kinds
            else "no Gaussian attention bias: the vit_gauss_* variants add one (guideline C)"
            if is_vit
            else "not a ViT"
        ),
    }


@torch.no_grad()
def _scale_invariance(model: nn.Module, input_size) -> dict[str, Any]:
    is_vit = hasattr(model, "patch_embed")
    x = noise_images(AUDIT_INPUT, input_size, seed=0)
    reference = model(x)
    scale = reference.abs().max().clamp(min=1e-12)
    change = max(((model(c * x) - reference).abs().max() / scale).item() for c in SCALES)
    return {
        "applies": is_vit,
        "max_relative_change": change,
        "scales": list(SCALES),
        "invariant": change <= INVARIANCE_TOLERANCE,
        "tolerance": INVARIANCE_TOLERANCE,
        "advice": (
            "scale-invariant patch embedding (guideline G)"
            if change <= INVARIANCE_TOLERANCE
            else "not scale-invariant: a PreLayerNorm patch embedding (vit_preln_*) makes it so"
            if is_vit
            else "not a ViT (measured anyway)"
        ),
    }


def audit(model: nn.Module, name: str | None = None) -> dict[str, Any]:
    """The guideline report for ``model`` (see the module docstring). JSON-ready."""
    was_training = model.training
    model.eval()
    try:
        input_size = default_input_size(model)
        return {
            "model": name or type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "input_size": list(input_size),
            "H_dead_pixels": _dead_pixels(model),
            "D_dropout": _dropout(model),
            "F_gamma_decay": _gamma(model),
            "E_group_norm": _group_norm(model, input_size),
            "C_attention_bias": _attention_bias(model),
            "G_scale_invariance": _scale_invariance(model, input_size),
            "B_aspp_rates": {
                "applies": False,
                "advice": "ASPP rates concern mmseg configs (crop size vs rates), not timm "
                "models: zoo audit CONFIG.py",
            },
        }
    finally:
        model.train(was_training)


def format_audit(report: dict[str, Any]) -> str:
    """The text face of :func:`audit`."""
    lines = [f"audit of {report['model']} ({report['parameters'] / 1e6:.1f} M parameters)"]
    h = report["H_dead_pixels"]
    lines.append(f"\nH dead pixels: {len(h['layers'])} odd-kernel/even-stride layer(s)")
    for layer in h["layers"]:
        k, s = layer["kernel"], layer["stride"]
        lines.append(f"    {layer['name']:<28} {layer['type']:<10} {k[0]}x{k[1]}/s{s[0]}")
    if h["applies"]:
        lines.append(f"  fix: {h['fix']}; it would convert {len(h['kernel_pad_would_change'])}")
    d = report["D_dropout"]
    lines.append(f"\nD dropout: head drop_rate {d['head_drop_rate']}; {d['advice']}")
    f = report["F_gamma_decay"]
    if "counts" in f:
        counts = ", ".join(f"{k} {v}" for k, v in f["counts"].items())
        lines.append(f"\nF gamma categories: {counts}")
        lines.append(
            f"  policy='paper' decays {f['paper_policy_decays']} gamma(s), keeps "
            f"{f['paper_policy_keeps']}: {f['fix']}"
        )
    else:
        lines.append(f"\nF gamma categories: {f.get('error', 'no norm layers')}")
    e = report["E_group_norm"]
    if e["applies"]:
        lines.append(
            f"\nE GroupNorm: {len(e['layers'])} layer(s), {e['would_change']} would change"
        )
        for layer in e["layers"]:
            lines.append(
                f"    {layer['name']:<28} G {layer['groups']:>3} -> {layer['ideal_groups']:<4} "
                f"gain {layer['gain']:.3f} -> {layer['ideal_gain']:.3f}"
            )
    else:
        lines.append("\nE GroupNorm: no GroupNorm layers")
    c = report["C_attention_bias"]
    bias = ", ".join(c["attention_bias"]) or "none"
    lines.append(f"\nC attention bias: {bias}; {c['advice']}")
    g = report["G_scale_invariance"]
    lines.append(
        f"\nG input scale x{g['scales']}: max relative output change "
        f"{g['max_relative_change']:.2e}; {g['advice']}"
    )
    lines.append(f"\nB ASPP rates: {report['B_aspp_rates']['advice']}")
    return "\n".join(lines)
