"""Throughput cost of the ViT guidelines against their timm base models, on this machine's CPU.

    python benchmarks/vit_overhead.py [--batch 8] [--repeats 15]

Prints time ratios (variant / base; < 1 is faster) measured in one run, interleaved:
  - vit_gauss_s16 vs vit_relpos_small_patch16_224: eval (target <= 1.00: the cached
    relative + Gaussian bias replaces timm's per-call RelPosMlp) and train step (target <= 1.05)
  - vit_preln_s16 vs vit_small_patch16_224: eval and train step (target <= 1.02)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_seconds, verdict

import zoo  # noqa: F401  (registers the variants)

PAIRS = [
    ("vit_gauss_s16", "vit_relpos_small_patch16_224", {"eval": 1.00, "train": 1.05}),
    ("vit_preln_s16", "vit_small_patch16_224", {"eval": 1.02, "train": 1.02}),
]


def eval_step(model, x):
    def run():
        with torch.no_grad():
            model(x)

    return run


def train_step(model, x):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    target = torch.zeros(x.shape[0], dtype=torch.long)

    def run():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), target).backward()
        optimizer.step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per step (default: 8)")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (default: 15)")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 224, 224)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"{'variant':<16} {'base':<30} {'mode':<6} {'ratio':>6}  target")
    for variant, base, targets in PAIRS:
        models = {name: timm.create_model(name) for name in (variant, base)}
        for mode, make_step in (("eval", eval_step), ("train", train_step)):
            steps = {}
            for name, model in models.items():
                model.train(mode == "train")
                steps[name] = make_step(model, x)
            times = median_seconds(steps, repeats=args.repeats)
            ratio = times[variant] / times[base]
            target = targets[mode]
            print(
                f"{variant:<16} {base:<30} {mode:<6} {ratio:>6.3f}  <= {target:.2f} "
                f"{verdict(ratio, target)}  ({times[variant] * 1e3:.0f} ms vs "
                f"{times[base] * 1e3:.0f} ms)"
            )


if __name__ == "__main__":
    main()
