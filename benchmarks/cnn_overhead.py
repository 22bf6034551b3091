"""Cost of the CNN variants against their base ResNets, on this machine's CPU.

    python benchmarks/cnn_overhead.py [--batch 8] [--rounds 20]

Prints, for ``resnet50_kp`` (kernel padding, the paper's full fix, pools included) vs
``resnet50`` and for ``resnet50_gncal`` (calibrated GroupNorm groups) vs ``resnet50_gn``:
  - the FLOP ratio, counted by ``torch.utils.flop_counter`` on one forward;
  - the time ratio of an inference forward and of a training step (median of paired rounds).
Target: time ratio no more than 5% above the FLOP ratio, i.e. each variant costs its
arithmetic (for kernel padding mostly the 1x1 -> 2x2 downsample convs; group counts change
none) and nothing on top.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from _timing import mode_ratios, verdict

import zoo  # noqa: F401  (registers the variants)

PAIRS = [("resnet50_kp", "resnet50"), ("resnet50_gncal", "resnet50_gn")]


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per step (default: 8)")
    parser.add_argument("--rounds", type=int, default=20, help="paired rounds (default: 20)")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 224, 224)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    for variant, base in PAIRS:
        models = {name: timm.create_model(name).eval() for name in (variant, base)}
        flops = {name: forward_flops(m, x[:1]) for name, m in models.items()}
        flop_ratio = flops[variant] / flops[base]
        print(
            f"{variant} vs {base}: FLOP ratio {flop_ratio:.3f} "
            f"({flops[variant] / 1e9:.2f} vs {flops[base] / 1e9:.2f} GFLOP per image)"
        )
        target = 1.05 * flop_ratio
        for mode, ratio in mode_ratios(models[variant], models[base], x, args.rounds):
            print(
                f"  {mode:<6} time ratio {ratio!s:<25} <= {target:.3f} (1.05 x FLOP ratio) "
                f"{verdict(ratio.median, target)}"
            )


if __name__ == "__main__":
    main()
