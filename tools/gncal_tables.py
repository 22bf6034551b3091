"""Compute the per-layer GroupNorm counts of the ``*_gncal`` variants (paper E, ours).

    python tools/gncal_tables.py            # print each variant's calibration table
    python tools/gncal_tables.py --write    # also rewrite zoo/models/resnet_gncal_groups.json

The markdown tables are the ones in docs/cnn.md.
"""

from __future__ import annotations

import argparse
import json

from zoo.models.resnet_gncal import BASES, CALIBRATION, GROUPS_FILE, calibrate_variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help=f"of {', '.join(BASES)}")
    parser.add_argument("--write", action="store_true", help=f"rewrite {GROUPS_FILE.name}")
    args = parser.parse_args()
    unknown = sorted(set(args.variants) - set(BASES))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(BASES)}")

    shipped = json.loads(GROUPS_FILE.read_text())["variants"] if GROUPS_FILE.exists() else {}
    for variant in args.variants or list(BASES):
        report = calibrate_variant(variant)
        print(f"## {variant} (from {BASES[variant][0]})\n\n{report}\n")
        shipped[variant] = report.groups()
    if args.write:
        calibration = {**CALIBRATION, "input_size": list(CALIBRATION["input_size"])}
        document = {"calibration": calibration, "variants": shipped}
        GROUPS_FILE.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {GROUPS_FILE}")


if __name__ == "__main__":
    main()
