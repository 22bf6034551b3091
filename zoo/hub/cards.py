"""Model cards: one Hugging Face Hub README per variant, generated from the registry.

``model_cards/<variant>.md`` is never edited by hand: ``zoo cards`` writes it from
``registry/`` and ``zoo cards --check`` fails when a card differs from what the registry
gives (a test runs it). The card is also the README of the variant's Hub repository
(``zoo publish``).
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.hub.registry import WEIGHT_KINDS, Registry, Variant, WeightSource, load_registry

# The paper rules that are derived by us, not reproduced from the paper (papers.md).
OURS = {
    "B": "The rate formula is ours, derived from the paper's geometry; the paper's exact "
    "formula is not reproduced.",
    "E": "The group-count rule is ours, derived from the paper's stated principle (isometric "
    "gradient propagation at initialization); the paper's exact formula is not reproduced.",
    "F": "The four gamma categories are ours, derived from the paper's two analyses; the "
    "paper's exact wording is not reproduced.",
}


def default_cards_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "model_cards"


def _yaml_list(key: str, values: list[str]) -> list[str]:
    if not values:
        return []
    return [f"{key}:", *(f"- {json.dumps(v)}" for v in values)]


def _datasets(variant: Variant) -> list[str]:
    seen: list[str] = []
    for weights in variant.weights:
        for metric in weights.metrics:
            if metric.dataset not in seen:
                seen.append(metric.dataset)
    return seen


def _base_models(variant: Variant) -> list[str]:
    return [w.source for w in variant.weights if w.source]


def _task(variant: Variant) -> str:
    if variant.family == "timm":
        return "image-classification"
    return "depth-estimation" if variant.paper == "A" else "image-segmentation"


def _front_matter(variant: Variant, registry: Registry) -> list[str]:
    paper = registry.papers[variant.paper]
    licenses = sorted({w.license for w in variant.weights}) or ["apache-2.0"]
    library = "mmsegmentation" if variant.family == "mmseg" else variant.family
    lines = ["---", f"library_name: {library}", f"license: {licenses[0]}"]
    tags = [variant.family, "guidezoo", f"arxiv:{paper.arxiv}", _task(variant)]
    lines += _yaml_list("tags", tags)
    lines += _yaml_list("datasets", _datasets(variant))
    lines += _yaml_list("base_model", _base_models(variant))
    measured = [(w, m) for w in variant.weights for m in w.metrics]
    if measured:
        lines += ["model-index:", f"- name: {variant.name}", "  results:"]
        for weights, metric in measured:
            lines += [
                "  - task:",
                f"      type: {_task(variant)}",
                "    dataset:",
                f"      name: {json.dumps(metric.dataset)}",
                f"      type: {json.dumps(metric.dataset)}",
                f"      split: {json.dumps(metric.split)}",
                "    metrics:",
                f"    - type: {json.dumps(metric.name)}",
                f"      value: {metric.value}",
                f"      name: {json.dumps(f'{metric.name} ({weights.tag})')}",
            ]
    lines.append("---")
    return lines


def _mmseg_load_snippet(variant: Variant) -> list[str]:
    lines = [
        "```python",
        "# a config of yours; `zoo configs path` prints where the zoo's config is installed",
        f"_base_ = ['<zoo configs path {variant.config}>']",
    ]
    lines += [
        f"load_from = 'hf-hub:{w.hub_id}'  # {w.tag}, sha256-checked" for w in variant.weights
    ]
    return [
        *lines,
        "```",
        "",
        "The zoo's config has `custom_imports = dict(imports=['zoo.mmseg'], ...)`, which lets "
        "`load_from` and `init_cfg` read `hf-hub:` ids and `.safetensors` files.",
    ]


def _load_snippet(variant: Variant) -> list[str]:
    if variant.family == "mmseg":
        return _mmseg_load_snippet(variant)
    lines = ["```python", "import timm", "import zoo  # registers the zoo's variants with timm", ""]
    lines.append(f"model = timm.create_model({variant.name!r})  # architecture, random weights")
    for w in variant.weights:
        if w.kind == "trained":
            lines.append(f"model = timm.create_model('hf-hub:{w.hub_id}')  # verified sha256")
        lines.append(f"model = timm.create_model('{variant.name}.{w.tag}', pretrained=True)")
    lines.append("```")
    return lines


def _provenance_row(w: WeightSource) -> str:
    where = f"`{w.hub_id}` @ `{w.revision}`" if w.hub_id else "converted at load time"
    sha = f"`{w.sha256}`" if w.sha256 else "-"
    source = f"`{w.source}`" if w.source else "-"
    kind = f"{w.kind}: {WEIGHT_KINDS[w.kind]}"
    return f"| `{w.tag}` | {kind} | {source} | {where} | {sha} | {w.license} |"


def _stats(variant: Variant) -> list[str]:
    if variant.params_m is None and variant.gflops is None:
        return []
    size = "the training crop" if variant.family == "mmseg" else "the default input size"
    return [
        f"Parameters: {variant.params_m} M; GFLOPs of one inference forward at {size}: "
        f"{variant.gflops} (`zoo registry refresh`: torch.utils.flop_counter, a multiply-add "
        "counts two).",
        "",
    ]


def render_card(variant: Variant, registry: Registry) -> str:
    """The Hub README of ``variant``: YAML metadata, then the guideline, how to load it, the
    weights' provenance, metrics with their recipe, and limitations."""
    paper = registry.papers[variant.paper]
    lines = _front_matter(variant, registry)
    lines += [
        "",
        f"# {variant.name}",
        "",
        variant.summary,
        "",
        "## The guideline",
        "",
        f"Paper {paper.letter}: *{paper.title}* ({paper.venue}, "
        f"[arXiv:{paper.arxiv}]({paper.url})). Guideline: {paper.guideline}.",
        "",
        f"Base {'config (mmseg)' if variant.family == 'mmseg' else 'architecture'}: "
        f"`{variant.base_architecture}`."
        + (f" Zoo config: `{variant.config}`." if variant.config else "")
        + (f" {OURS[variant.paper]}" if variant.paper in OURS else ""),
        "",
        *_stats(variant),
        "## How to load",
        "",
        *_load_snippet(variant),
        "",
        *(
            ["`import zoo` must come first: timm has no plugin discovery.", ""]
            if variant.family == "timm"
            else []
        ),
        "## Weights",
        "",
    ]
    if variant.weights:
        lines += [
            "| tag | kind | converted from | published at | sha256 (model.safetensors) | license |",
            "|---|---|---|---|---|---|",
            *(_provenance_row(w) for w in variant.weights),
        ]
        notes = [f"- `{w.tag}`: {w.notes}" for w in variant.weights if w.notes]
        lines += ["", *notes] if notes else []
    else:
        lines.append(
            "No pretrained weights: `pretrained=True` is an error. Train it yourself."
            if variant.family == "timm"
            else "No checkpoint published yet: train with `tools/train.py`, publish with "
            "`zoo publish CHECKPOINT --variant NAME --repo-id ORG/NAME --tag TAG`."
        )
    lines += ["", "## Metrics", ""]
    measured = [(w, m) for w in variant.weights for m in w.metrics]
    if measured:
        lines += [
            "| tag | dataset | split | metric | value | recipe |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{w.tag}` | {m.dataset} | {m.split} | {m.name} | {m.value} | {m.recipe} |"
            for w, m in measured
        ]
    else:
        lines.append(
            "None measured by the zoo yet. A conversion computes what its source did only when "
            "its kind is *exact*; an *init* conversion must be fine-tuned before use."
        )
    lines += ["", "## Limitations", ""]
    limits = []
    if any(w.kind == "init" for w in variant.weights):
        limits.append(
            "Init-only weights initialise the variant from a checkpoint of its base "
            "architecture; the function changed, so loading warns and the model must be "
            "fine-tuned before use."
        )
    if variant.paper in OURS:
        limits.append(OURS[variant.paper])
    limits.append("Weights load from `model.safetensors` only; a pickle-only source is refused.")
    lines += [f"- {text}" for text in limits]
    return "\n".join(lines) + "\n"


def card_path(name: str, directory: Path | None = None) -> Path:
    return (directory or default_cards_dir()) / f"{name}.md"


def write_cards(
    directory: Path | None = None, registry: Registry | None = None, names: list[str] | None = None
) -> list[Path]:
    """Write the cards of ``names`` (default: every variant); returns the files written."""
    registry = registry or load_registry()
    directory = directory or default_cards_dir()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for variant in registry:
        if names is None or variant.name in names:
            path = card_path(variant.name, directory)
            path.write_text(render_card(variant, registry), encoding="utf-8")
            written.append(path)
    return written


def stale_cards(directory: Path | None = None, registry: Registry | None = None) -> list[str]:
    """Problems, one line each: cards that differ from the registry, are missing, or belong
    to no registered variant. Empty when every card is current."""
    registry = registry or load_registry()
    directory = directory or default_cards_dir()
    problems = []
    for variant in registry:
        path = card_path(variant.name, directory)
        if not path.is_file():
            problems.append(f"{path}: missing (run `zoo cards`)")
        elif path.read_text(encoding="utf-8") != render_card(variant, registry):
            problems.append(f"{path}: stale, differs from the registry (run `zoo cards`)")
    known = {f"{v.name}.md" for v in registry} | {"README.md"}
    problems += [
        f"{p}: no registered variant of that name"
        for p in sorted(directory.glob("*.md"))
        if p.name not in known
    ]
    return problems
