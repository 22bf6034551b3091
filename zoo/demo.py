"""``zoo demo``'s highlights, on small inputs and random weights (seconds on a CPU).

1. the audit of ``resnet50`` and ``vit_small_patch16_224`` (which guidelines apply);
2. the dead-pixel checkerboard: output ERF of ``resnet50`` vs ``resnet50_kp``;
3. the PreLN invariance: a contrast sweep of ``vit_small_patch16_224`` vs ``vit_preln_s16``.

Writes the PNGs and ``report.md`` into the output folder and prints the report.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zoo.analysis._models import RANDOM_WEIGHTS_NOTE, analysis_model
from zoo.analysis.audit import audit
from zoo.analysis.erf import erf
from zoo.analysis.robustness import robustness_sweep, save_plot

ERF_INPUT = (3, 128, 128)
ERF_IMAGES = 8
CONTRASTS = (0.1, 0.5, 2.0, 10.0)
SWEEP_IMAGES = 4


def _model(name: str) -> torch.nn.Module:
    return analysis_model(name)


def _audit_lines(name: str) -> list[str]:
    report = audit(_model(name), name)
    h, f, c, g = (
        report["H_dead_pixels"],
        report["F_gamma_decay"],
        report["C_attention_bias"],
        report["G_scale_invariance"],
    )
    counts = ", ".join(f"{k} {v}" for k, v in f.get("counts", {}).items())
    return [
        f"- **{name}**: {len(h['layers'])} dead-pixel layer(s) (H); gamma categories {counts} "
        f"(F); attention bias: {', '.join(c['attention_bias']) or 'none'} (C); input-scale "
        f"output change {g['max_relative_change']:.1e} (G: "
        f"{'invariant' if g['invariant'] else 'not invariant'})",
    ]


def run_demo(out: Path) -> Path:
    lines = ["# guidezoo demo", "", f"Seeded Gaussian inputs; {RANDOM_WEIGHTS_NOTE}.", ""]
    lines += ["## Audit", ""]
    for name in ("resnet50", "vit_small_patch16_224"):
        lines += _audit_lines(name)

    lines += ["", "## Dead pixels: output ERF (paper H)", ""]
    lines += ["| model | checkerboard index | sigma x / y (px) | PNG |", "|---|---:|---|---|"]
    for name in ("resnet50", "resnet50_kp"):
        result = erf(
            _model(name), None, "output", num_images=ERF_IMAGES, input_size=ERF_INPUT,
            progress=False, receptive_field=False,
        )  # fmt: skip
        png = result.save_png(out / f"erf_{name}.png", name)
        g = result.gaussian
        lines.append(
            f"| {name} | {result.checkerboard['index']:.3f} | {g.sigma_x:.0f} / {g.sigma_y:.0f} "
            f"| {png.name} |"
        )
    lines += [
        "",
        "The index is the spread of the ERF over the 2x2 pixel-parity classes: odd kernels at "
        "stride 2 cover pixels unevenly (a checkerboard); even kernels do not.",
        "",
        "## Contrast: PreLN invariance (paper G)",
        "",
        "| model | " + " | ".join(f"x{c:g}" for c in CONTRASTS) + " |",
        "|---|" + "---:|" * len(CONTRASTS),
    ]
    reports = []
    for name in ("vit_small_patch16_224", "vit_preln_s16"):
        report = robustness_sweep(
            _model(name), name=name, corruptions={"contrast": CONTRASTS}, num_images=SWEEP_IMAGES
        )
        reports.append(report)
        cells = " | ".join(f"{r.max_output_change:.1e}" for r in report.rows)
        lines.append(f"| {name} | {cells} |")
    png = save_plot(reports, out / "contrast_vit_small_vs_preln.png")
    lines += [
        "",
        f"Cells: max relative change of the logits when the input is scaled ({png.name}).",
    ]
    text = "\n".join(lines) + "\n"
    report_path = out / "report.md"
    report_path.write_text(text)
    print(text)
    print(f"wrote {report_path} and the PNGs beside it")
    return report_path
