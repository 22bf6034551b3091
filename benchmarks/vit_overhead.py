"""Throughput cost of the ViT guidelines against their timm base models, on this machine's CPU.

    python benchmarks/vit_overhead.py [--batch 8] [--rounds 20]

Prints time ratios (variant / base; < 1 is faster), the median over paired rounds measured in
one run, with their interquartile range:
  - vit_gauss_s16 vs vit_relpos_small_patch16_224: eval (target <= 1.00: the cached
    relative + Gaussian bias replaces timm's per-call RelPosMlp) and train step (target <= 1.05)
  - vit_preln_s16 vs vit_small_patch16_224: eval and train step (target <= 1.02)
and, because whole-model ratios on a shared CPU carry a few percent of noise, the part that
differs by design: the attention-bias path of all layers at inference (the GAB model's cached
B_rel + B_gauss against timm's per-call RelPosMlp).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import mode_ratios, paired_ratio, verdict

import zoo  # noqa: F401  (registers the variants)

PAIRS = [
    ("vit_gauss_s16", "vit_relpos_small_patch16_224", {"eval": 1.00, "train": 1.05}),
    ("vit_preln_s16", "vit_small_patch16_224", {"eval": 1.02, "train": 1.02}),
]


def bias_path(model, grid, cached: bool):
    """One inference forward's worth of attention-bias work, all layers."""

    def run():
        with torch.no_grad():
            for block in model.blocks:
                if cached:
                    block.attn.attn_bias(grid)
                else:
                    block.attn.rel_pos.get_bias()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per step (default: 8)")
    parser.add_argument("--rounds", type=int, default=20, help="paired rounds (default: 20)")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 224, 224)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"{'variant':<16} {'base':<30} {'mode':<6} {'ratio (IQR)':<25} target")
    for variant, base, targets in PAIRS:
        models = {name: timm.create_model(name) for name in (variant, base)}
        for mode, ratio in mode_ratios(models[variant], models[base], x, args.rounds):
            target = targets[mode]
            print(
                f"{variant:<16} {base:<30} {mode:<6} {ratio!s:<25} <= {target:.2f} "
                f"{verdict(ratio.median, target)}  ({ratio.variant_seconds * 1e3:.0f} ms vs "
                f"{ratio.base_seconds * 1e3:.0f} ms)"
            )
        if variant.startswith("vit_gauss"):
            grid = models[variant].patch_embed.grid_size
            ratio = paired_ratio(
                bias_path(models[variant].eval(), grid, cached=True),
                bias_path(models[base].eval(), grid, cached=False),
                rounds=5 * args.rounds,
            )
            print(
                f"{variant:<16} {base:<30} {'bias':<6} {ratio!s:<25}         "
                f"({ratio.variant_seconds * 1e3:.2f} ms vs {ratio.base_seconds * 1e3:.2f} ms "
                "per forward, all layers)"
            )


if __name__ == "__main__":
    main()
