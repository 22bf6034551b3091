"""Cost of the effective receptive field against a plain forward, on this machine's CPU.

    python benchmarks/erf_speed.py [--images 16] [--batch 8] [--rounds 5] [--models ...]

For each model (default ``resnet50`` and ``vit_small_patch16_224`` at 224x224, random
weights), on the same seeded images, times in rotating rounds:
  - ``forward``: a no-grad eval forward of every image (batches of ``--batch``);
  - ``batched``: the ERF map, one input-gradient backward per batch (``zoo.analysis.erf``);
  - ``loop``: the ERF map, one image at a time (the papers' loop).
Prints images/s of each and their time ratios to the forward (median of rounds, IQR).
Targets: batched ERF <= 2.2x a forward, and never slower than the loop. The floor is about
2x: one forward plus one backward that computes only the input gradient.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import relative_times, verdict

import zoo  # noqa: F401  (registers the variants)
from zoo.analysis.erf import erf_map_of, noise_images

ERF_TARGET = 2.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="images per step (default: 16)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default: 8)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default: 5)")
    parser.add_argument("--size", type=int, default=224, help="input size (default: 224)")
    parser.add_argument(
        "--models", nargs="+", default=["resnet50", "vit_small_patch16_224"], help="timm names"
    )
    args = parser.parse_args()

    x = noise_images(args.images, (3, args.size, args.size), seed=0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images "
        f"of {args.size}x{args.size}, batch {args.batch}, {args.rounds} rounds"
    )
    for name in args.models:
        model = timm.create_model(name).eval()

        def forward(model=model):
            with torch.no_grad():
                for batch in x.split(args.batch):
                    model(batch)

        steps = {
            "forward": forward,
            "batched": lambda model=model: erf_map_of(model, x, batch_size=args.batch),
            "loop": lambda model=model: erf_map_of(model, x, batched=False),
        }
        ratios = relative_times(steps, base="forward", rounds=args.rounds)
        print(f"{name}:")
        for step, ratio in ratios.items():
            print(
                f"  {step:<8} {args.images / ratio.variant_seconds:7.2f} images/s   "
                f"time ratio to forward {ratio!s}"
            )
        batched, loop = ratios["batched"].median, ratios["loop"].median
        print(
            f"  batched ERF {batched:.2f}x a forward (target <= {ERF_TARGET}) "
            f"{verdict(batched, ERF_TARGET)}; batched/loop {batched / loop:.2f} "
            f"(target <= 1) {verdict(batched / loop, 1.0)}"
        )


if __name__ == "__main__":
    main()
