"""The ``zoo`` command. Each subcommand is a thin face over the package; ``--help`` on each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

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


def _create_model(name: str, pretrained: bool = False):
    """A timm model by name (zoo variants included), in eval mode; see ``analysis_model``."""
    from zoo.analysis._models import analysis_model

    try:
        return analysis_model(name, pretrained)
    except RuntimeError as error:  # timm: "Unknown model (...)"
        raise SystemExit(f"zoo: {error}") from None


def _input_size(model, size: int | None) -> tuple[int, int, int]:
    from zoo.analysis.erf import default_input_size

    channels, height, width = default_input_size(model)
    return (channels, size, size) if size else (channels, height, width)


def _out_dir(path: str) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def cmd_erf(args: argparse.Namespace) -> int:
    from zoo.analysis.erf import erf

    model = _create_model(args.model, args.pretrained)
    target = int(args.target) if args.target.lstrip("-").isdigit() else args.target
    result = erf(
        model,
        args.images,
        target,
        num_images=args.num_images,
        input_size=_input_size(model, args.size),
        seed=args.seed,
        batch_size=args.batch_size,
    )
    png = result.save_png(_out_dir(args.out) / f"erf_{args.model}.png", args.model)
    if args.json:
        print(json.dumps({**result.summary(), "png": str(png), "notes": result.notes}, indent=2))
    else:
        print(f"{args.model}: {result.title()}")
        for note in result.notes:
            print(f"  note: {note}")
        print(f"wrote {png}")
    return 0


def cmd_dead_pixel(args: argparse.Namespace) -> int:
    from zoo.analysis.dead_pixel import WEAK_THRESHOLD, dead_pixel_comparison

    model = _create_model(args.model, args.pretrained)
    reports = dead_pixel_comparison(
        model,
        trained=args.pretrained,
        name=args.model,
        images=args.images,
        num_images=args.num_images,
        input_size=_input_size(model, args.size),
        seed=args.seed,
        pixels=args.pixels,
        delta=args.delta,
    )
    out = _out_dir(args.out)
    pngs = [
        r.erf.save_png(out / f"dead_pixel_{r.name}.png".replace("(", "_").replace(")", ""), r.name)
        for r in reports
    ]
    if args.json:
        print(
            json.dumps(
                [{**r.summary(), "png": str(p)} for r, p in zip(reports, pngs, strict=True)],
                indent=2,
            )
        )
        return 0
    rows = [
        (
            r.name,
            f"{r.erf.checkerboard['index']:.3f}",
            f"{r.weak_fraction:.3f}",
            f"{r.output_change['weak']:.3g}",
            f"{r.output_change['strong']:.3g}",
            f"{r.output_change['weak_over_strong']:.3f}",
        )
        for r in reports
    ]
    headers = (
        "model",
        "checkerboard",
        f"weak (<{WEAK_THRESHOLD})",
        "|dy| weak",
        "|dy| strong",
        "weak/strong",
    )
    print(format_table(headers, rows))
    weights = (
        "pretrained (zero-padded kernels: only the pools differ until fine-tuned)"
        if args.pretrained
        else "random weights (even kernels initialised in full)"
    )
    print(f"kernel_pad side: {weights}")
    print("wrote " + ", ".join(str(p) for p in pngs))
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from zoo.analysis.robustness import load_labelled_images, robustness_sweep, save_plot

    names = [args.model] + ([args.compare] if args.compare else [])
    reports = []
    for name in names:
        model = _create_model(name, args.pretrained)
        images = labels = None
        if args.images:
            images, labels = load_labelled_images(args.images, model, limit=args.num_images)
        reports.append(
            robustness_sweep(
                model, images, labels, name=name, num_images=args.num_images, seed=args.seed
            )
        )
    png = save_plot(reports, _out_dir(args.out) / f"robustness_{'_vs_'.join(names)}.png")
    if args.json:
        print(json.dumps({"reports": [r.to_dict() for r in reports], "png": str(png)}, indent=2))
    else:
        print("\n\n".join(r.table() for r in reports))
        print(f"wrote {png}")
    return 0


def _is_mmseg_config(name: str) -> bool:
    from zoo.configs import list_configs

    return name.endswith(".py") or name in list_configs()


def cmd_audit(args: argparse.Namespace) -> int:
    if _is_mmseg_config(args.model):
        from zoo.mmseg.audit import audit_config, format_config_audit

        try:
            report = audit_config(args.model)
        except ValueError as error:
            raise SystemExit(f"zoo audit: {error}") from None
        print(json.dumps(report, indent=2) if args.json else format_config_audit(report))
        return 0
    from zoo.analysis.audit import audit, format_audit

    report = audit(_create_model(args.model, args.pretrained), args.model)
    print(json.dumps(report, indent=2) if args.json else format_audit(report))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from zoo import doctor

    print(doctor.format_report(doctor.diagnose()))
    print()
    print(variant_table())
    if args.environment_only:
        return 0
    from zoo.demo import run_demo

    print()
    run_demo(_out_dir(args.out))
    return 0


def cmd_atrous_rates(args: argparse.Namespace) -> int:
    from zoo.guidelines.atrous import DEFAULT_RATES, atrous_rates, feature_size, rate_report

    crop = args.crop[0] if len(args.crop) == 1 else tuple(args.crop)  # validated below
    try:
        derived = atrous_rates(crop, args.output_stride, args.num_rates)
        reports = {
            "derived": rate_report(crop, args.output_stride, derived),
            "default": rate_report(crop, args.output_stride, args.compare or DEFAULT_RATES),
        }
        hw = feature_size(crop, args.output_stride)
    except ValueError as error:
        raise SystemExit(f"zoo atrous-rates: {error}") from None
    crop = (crop, crop) if isinstance(crop, int) else crop
    if args.json:
        print(json.dumps({"crop": list(crop), "output_stride": args.output_stride,
                          "feature_size": list(hw), **reports}, indent=2))  # fmt: skip
        return 0
    print(
        f"crop {crop[0]}x{crop[1]}, output stride {args.output_stride}: feature map "
        f"{hw[0]}x{hw[1]}; a 3x3 tap at rate r spans 2r+1 feature pixels"
    )
    rows = [
        (which, r["rate"], r["span"], "yes" if r["fits"] else "no", f"{r['tap_coverage']:.3f}")
        for which, report in reports.items()
        for r in report
    ]
    print(format_table(("rates", "rate", "span", "fits map", "taps inside"), rows))
    print(
        f"mmseg dilations: (1, {', '.join(map(str, derived))})  "
        "(derived rule, ours: zoo.guidelines.atrous)"
    )
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    from zoo import configs

    try:
        if args.action == "list":
            for name in configs.list_configs():
                print(name)
        elif args.action == "path":
            print(configs.config_path(_one_name(args)))
        else:
            if len(args.names) != 2:
                raise ValueError("copy takes NAME DEST")
            print(configs.copy_config(args.names[0], args.names[1], force=args.force))
    except (ValueError, FileExistsError) as error:
        raise SystemExit(f"zoo configs {args.action}: {error}") from None
    return 0


def _one_name(args: argparse.Namespace) -> str:
    if len(args.names) != 1:
        raise ValueError(f"{args.action} takes one NAME (see zoo configs list)")
    return args.names[0]


def cmd_cards(args: argparse.Namespace) -> int:
    from zoo.hub.cards import stale_cards, write_cards

    directory = Path(args.dir) if args.dir else None
    if args.check:
        problems = stale_cards(directory)
        for problem in problems:
            print(problem, file=sys.stderr)
        print("model cards: " + (f"{len(problems)} problem(s)" if problems else "all current"))
        return 1 if problems else 0
    for path in write_cards(directory):
        print(f"wrote {path}")
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from zoo.hub.refresh import refresh_registry

    changes = refresh_registry(args.dir, check=args.check)
    for change in changes:
        print(change)
    if args.check:
        print(f"registry: {len(changes)} measured value(s) out of date" if changes else
              "registry: measured values current")  # fmt: skip
        return 1 if changes else 0
    print(f"registry: {len(changes)} value(s) updated")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from zoo.hub.publish import PublishError, prepare_repo_folder, publish

    out = Path(args.out or Path("hub") / args.repo_id.replace("/", "--"))
    registry_dir = Path(args.registry_dir) if args.registry_dir else None
    cards_dir = Path(args.cards_dir) if args.cards_dir else None
    try:
        plan = prepare_repo_folder(
            args.checkpoint, args.variant, args.repo_id, args.tag, out,
            license=args.license, metrics=args.metric or (), commit_message=args.message,
            config=args.config,
        )  # fmt: skip
        print(plan.describe())
        if args.dry_run:
            print(f"dry run: wrote {plan.folder}; nothing uploaded, the registry is unchanged")
            return 0
        revision = publish(
            plan, force=args.force, private=args.private, registry_dir=registry_dir,
            cards_dir=cards_dir,
        )  # fmt: skip
    except (PublishError, KeyError, ValueError) as error:
        raise SystemExit(f"zoo publish: {error}") from None
    print(f"published {args.repo_id}@{revision}; registry and model card updated")
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

    p = commands.add_parser(
        "demo",
        help="the main job: environment, variants, and the guidelines' highlights",
        description="Environment report and variant table, then the highlights on small "
        "inputs: the audit of resnet50 and vit_small_patch16_224, the ERF checkerboard of "
        "resnet50 vs resnet50_kp, and the PreLN invariance; PNGs and report.md go to --out.",
    )
    p.add_argument("--out", default="zoo-demo", help="output folder (default: ./zoo-demo)")
    p.add_argument(
        "--environment-only", action="store_true", help="stop after the environment report"
    )
    p.set_defaults(func=cmd_demo)

    def model_command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=description)
        sub.add_argument("model", help="a timm model name (zoo variants included)")
        sub.add_argument(
            "--pretrained",
            action="store_true",
            help="load pretrained weights (default: seeded random weights, residual branches "
            "active)",
        )
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        return sub

    def input_options(sub: argparse.ArgumentParser, num_images: int) -> None:
        sub.add_argument("--images", help="a folder of images (default: seeded Gaussian images)")
        sub.add_argument(
            "--num-images", type=int, default=num_images, help=f"images (default: {num_images})"
        )
        sub.add_argument("--seed", type=int, default=0, help="seed of the generated images")
        sub.add_argument("--out", default="zoo-analysis", help="folder for the PNGs")

    p = model_command(
        "erf",
        "effective receptive field of a model",
        "ERF as papers B, C and H measure it: channel mean at the centre of the target, "
        "input gradient, colour mean, ReLU per image, mean over images; Gaussian fit, "
        "checkerboard index, theoretical receptive field, and a PNG.",
    )
    input_options(p, 8)
    p.add_argument(
        "--target",
        default="output",
        help="'output', a stage index (timm forward_intermediates) or a module name",
    )
    p.add_argument("--size", type=int, help="square input size (default: the model's)")
    p.add_argument("--batch-size", type=int, default=8, help="images per backward (default: 8)")
    p.set_defaults(func=cmd_erf)

    p = model_command(
        "dead-pixel",
        "dead pixel test, with the kernel-padded model side by side",
        "Output ERF, the fraction of weak pixels (ERF below half its 3x3 neighbourhood mean) "
        "and the one-pixel perturbation test, for the model and for kernel_pad(model).",
    )
    input_options(p, 8)
    p.add_argument("--size", type=int, help="square input size (default: the model's)")
    p.add_argument("--pixels", type=int, default=16, help="weak/strong pixels to perturb")
    p.add_argument("--delta", type=float, default=1.0, help="perturbation (input units)")
    p.set_defaults(func=cmd_dead_pixel)

    p = model_command(
        "robustness",
        "contrast and corruption sweep",
        "Top-1 agreement with the clean prediction (accuracy when the image folder has "
        "integer class sub-folders) over contrast factors and common corruptions; a plot.",
    )
    input_options(p, 16)
    p.add_argument("--compare", help="a second model, side by side")
    p.set_defaults(func=cmd_robustness)

    p = model_command(
        "audit",
        "which guidelines apply to a model, and what they would change",
        "Dead-pixel layers (H), dropout placement (D), gamma categories (F), GroupNorm "
        "groups (E), attention bias (C), patch-embedding scale invariance (G); for an mmseg "
        "config (a .py path or a zoo config name), its ASPP rates against the crop size (B). "
        "Exit code 0.",
    )
    p.set_defaults(func=cmd_audit)

    p = commands.add_parser(
        "atrous-rates",
        help="resolution-aware ASPP rates for a crop size (paper B)",
        description="The derived rates (ours: the largest 3x3 span fits the shorter side of "
        "the feature map, 1:2:3 spacing) and, per branch, the fraction of taps that land "
        "inside the feature map, against mmseg's default (12, 24, 36).",
    )
    p.add_argument(
        "--crop", type=int, nargs="+", required=True, metavar="N", help="crop: H W (or one N)"
    )
    p.add_argument("--output-stride", type=int, default=8, help="at the ASPP head (default: 8)")
    p.add_argument("--num-rates", type=int, default=3, help="atrous branches (default: 3)")
    p.add_argument("--compare", type=int, nargs="+", help="rates to compare (default: 12 24 36)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(func=cmd_atrous_rates)

    p = commands.add_parser(
        "configs",
        help="the zoo's mmseg configs: list, path NAME, copy NAME DEST",
        description="mmengine's scope::path knows only OpenMMLab packages; inherit a zoo "
        "config by the absolute path 'zoo configs path NAME' prints, or copy it.",
    )
    p.add_argument("action", choices=("list", "path", "copy"))
    p.add_argument("names", nargs="*", help="NAME for path; NAME DEST for copy")
    p.add_argument("--force", action="store_true", help="copy: overwrite an existing DEST file")
    p.set_defaults(func=cmd_configs)

    p = commands.add_parser(
        "cards",
        help="write the Hub model cards from the registry (--check: fail when stale)",
        description="Generate model_cards/<variant>.md from registry/; with --check, exit 1 "
        "when a card is missing, differs from the registry or names no variant.",
    )
    p.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    p.add_argument("--dir", help="cards folder (default: the checkout's model_cards/)")
    p.set_defaults(func=cmd_cards)

    p = commands.add_parser(
        "registry",
        help="registry maintenance: 'refresh' measures params and GFLOPs into the registry",
        description="refresh: build every timm variant, count its parameters and the FLOPs "
        "of one forward at its default input size, and write them into registry/ (--check: "
        "only report, exit 1 when out of date).",
    )
    p.add_argument("action", choices=("refresh",))
    p.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    p.add_argument("--dir", help="registry folder (default: the packaged registry)")
    p.set_defaults(func=cmd_registry)

    p = commands.add_parser(
        "publish",
        help="publish a trained checkpoint to the Hugging Face Hub, with its model card",
        description="Check the checkpoint against the variant, write the Hub repo folder "
        "(model.safetensors, timm config.json, README.md model card), upload it with "
        "create_repo + upload_folder, then record Hub id, revision and sha256 in the "
        "registry. A different model.safetensors already on the Hub, or a registry entry of "
        "the same tag, is replaced only with --force.",
    )
    p.add_argument("checkpoint", help=".safetensors, or a .pth that loads weights-only")
    p.add_argument("--variant", required=True, help="the registered variant it belongs to")
    p.add_argument("--repo-id", required=True, help="Hub repository, ORG/NAME")
    p.add_argument("--tag", required=True, help="the timm pretrained tag, e.g. ft_in1k")
    p.add_argument("--out", help="folder to write (default: ./hub/ORG--NAME)")
    p.add_argument("--license", default="apache-2.0", help="license (default: apache-2.0)")
    p.add_argument(
        "--metric",
        action="append",
        help="dataset:split:name:value:recipe (repeatable), e.g. imagenet-1k:val:top1:80.1:...",
    )
    p.add_argument("--message", help="commit message (default: 'guidezoo: VARIANT.TAG')")
    p.add_argument(
        "--config", help="mmseg variants: the config trained with (default: the zoo's config)"
    )
    p.add_argument("--dry-run", action="store_true", help="write the folder, upload nothing")
    p.add_argument("--force", action="store_true", help="replace different weights")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--registry-dir", help="registry to update (default: the packaged one)")
    p.add_argument("--cards-dir", help="model cards folder (default: model_cards/)")
    p.set_defaults(func=cmd_publish)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
