"""The ``zoo`` command. Each subcommand is a thin face over the package; ``--help`` on each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from zoo import __version__


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def variant_table() -> str:
    from zoo.hub.registry import load_registry

    registry = load_registry()
    rows = [(v.name, v.paper, v.family, v.base_architecture, v.weights_status()) for v in registry]
    table = format_table(("variant", "paper", "family", "base architecture", "weights"), rows)
    return f"{table}\n({len(rows)} variant(s) registered in {registry.directory})"


def cmd_list(args: argparse.Namespace) -> int:
    from zoo.hub.registry import load_registry

    if args.json:
        print(json.dumps([v.to_dict() for v in load_registry()], indent=2))
    else:
        print(variant_table())
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from zoo import doctor

    findings = doctor.diagnose()
    if args.json:
        print(json.dumps(doctor.findings_as_dicts(findings), indent=2))
    else:
        print(doctor.format_report(findings))
    return 0 if doctor.healthy(findings) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from zoo import doctor

    print(doctor.format_report(doctor.diagnose()))
    print()
    print(variant_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="guidezoo: eight published training guidelines as a timm / mmseg model zoo.",
    )
    parser.add_argument("--version", action="version", version=f"guidezoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", help="table of the registered variants")
    p.add_argument("--json", action="store_true", help="print the registry entries as JSON")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser(
        "doctor",
        help="check versions, compiled mmcv ops and mmseg:: config resolution",
        description="Check this environment against guidezoo's pins and known pitfalls; "
        "print a fix for each problem. Exit code 1 when something is broken.",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=cmd_doctor)

    p = commands.add_parser("demo", help="the main job: environment report and the variant table")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
