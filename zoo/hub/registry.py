"""The registry: the manifest of every variant and every checkpoint the zoo publishes or converts.

It plays the role of torchvision's multi-weight metadata (``ResNet50_Weights.IMAGENET1K_V2``):
each variant records the paper it implements and its base architecture, and each of its weight
sources records where the weights come from, whether the conversion is exact or only an
initialisation, where they are published (Hub id, revision, sha256), the metrics they reach
with dataset and recipe, and their license.

On disk (the top-level ``registry/`` folder, shipped inside the wheel as ``zoo._registry``)::

    registry/papers.json          {"A": {"title", "arxiv", "venue", "guideline"}, ...}
    registry/<variant>.json       one file per variant, schema below

A variant file::

    {
      "name": "resnet50_kp",                 # == the file name, timm/mmseg model name
      "paper": "H",                          # a key of papers.json
      "family": "timm",                      # "timm" or "mmseg"
      "base_architecture": "resnet50",       # the architecture it modifies (timm model
                                             # name, or the mmseg config it inherits)
      "config": null,                        # mmseg family: the zoo config (zoo configs list)
      "summary": "one sentence",
      "params_m": 25.6, "gflops": 5.4,       # optional; filled by a command, never by hand
      "weights": [
        {
          "tag": "a1_in1k",                  # timm pretrained tag: resnet50_kp.a1_in1k
          "kind": "exact",                   # exact | init | trained (WEIGHT_KINDS)
          "source": "timm/resnet50.a1_in1k", # exact/init: the checkpoint converted from
          "hub_id": null, "revision": null, "sha256": null,  # where the zoo publishes it
          "license": "apache-2.0",
          "metrics": [{"dataset": "imagenet-1k", "split": "val", "name": "top1",
                       "value": 80.1, "recipe": "..."}],
          "notes": ""
        }
      ]
    }

Unknown fields are errors (a typo must not silently drop metadata); every error names the
file and the field.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PAPERS_FILE = "papers.json"

FAMILIES = ("timm", "mmseg")
WEIGHT_KINDS = {
    "exact": "converted from the source checkpoint; computes exactly what the source did",
    "init": "initialised from the source checkpoint; the function changed, fine-tune before use",
    "trained": "trained by the zoo and published on the Hugging Face Hub",
}

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PAPER_RE = re.compile(r"^[A-Z]$")


class RegistryError(ValueError):
    """A registry file that does not follow the schema; the message names file and field."""

    def __init__(self, path: Path | str, field_name: str, problem: str):
        self.path = Path(path)
        self.field = field_name
        super().__init__(f"{path}: field '{field_name}': {problem}")


@dataclass(frozen=True)
class Paper:
    letter: str
    title: str
    arxiv: str
    venue: str
    guideline: str

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"


@dataclass(frozen=True)
class Metric:
    dataset: str
    split: str
    name: str
    value: float
    recipe: str


@dataclass(frozen=True)
class WeightSource:
    tag: str
    kind: str
    license: str
    source: str | None = None
    hub_id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    metrics: tuple[Metric, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Variant:
    name: str
    paper: str
    family: str
    base_architecture: str
    summary: str
    weights: tuple[WeightSource, ...] = ()
    params_m: float | None = None
    gflops: float | None = None
    config: str | None = None
    path: Path | None = field(default=None, compare=False)

    def weights_status(self) -> str:
        """One line for tables: which pretrained tags exist and of which kind."""
        if not self.weights:
            return "none"
        return ", ".join(f"{w.tag} ({w.kind})" for w in self.weights)

    def to_dict(self) -> dict[str, Any]:
        """The variant as its file stores it (without the file path)."""
        data = asdict(self)
        del data["path"]
        return data


@dataclass(frozen=True)
class Registry:
    papers: dict[str, Paper]
    variants: dict[str, Variant]
    directory: Path

    def __iter__(self) -> Iterator[Variant]:
        return iter(self.variants.values())

    def __len__(self) -> int:
        return len(self.variants)

    def variant(self, name: str) -> Variant:
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(sorted(self.variants)) or "none registered"
            raise KeyError(f"unknown variant {name!r}; registered: {known}") from None


class _Fields:
    """Typed reads from one JSON object, with errors that name the file and the field path."""

    def __init__(self, path: Path, prefix: str, data: Any):
        self.path = path
        self.prefix = prefix
        if not isinstance(data, dict):
            raise RegistryError(path, prefix or "<top level>", f"expected an object, got {data!r}")
        self.data = data
        self.read: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, problem: str) -> RegistryError:
        return RegistryError(self.path, self._name(key), problem)

    def _get(self, key: str, required: bool) -> Any:
        self.read.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.error(key, "missing (required)")
            return None
        return self.data[key]

    def text(
        self,
        key: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
        choices: tuple[str, ...] | None = None,
        default: str | None = None,
    ) -> str | None:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}; got {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(key, f"{value!r} does not match {pattern.pattern}")
        return value

    def number(self, key: str, *, required: bool = False) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        return float(value)

    def objects(self, key: str) -> list[_Fields]:
        value = self._get(key, required=False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {value!r}")
        return [_Fields(self.path, f"{self._name(key)}[{i}]", item) for i, item in enumerate(value)]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            accepted = ", ".join(sorted(self.read))
            raise self.error(unknown[0], f"unknown field; accepted fields: {accepted}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RegistryError(path, "<file>", f"not valid JSON: {err}") from None


def _parse_papers(path: Path) -> dict[str, Paper]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise RegistryError(path, "<top level>", "expected an object keyed by paper letter")
    papers = {}
    for letter, entry in data.items():
        if not _PAPER_RE.fullmatch(letter):
            raise RegistryError(path, letter, "paper keys are single capital letters (A-Z)")
        f = _Fields(path, letter, entry)
        papers[letter] = Paper(
            letter=letter,
            title=f.text("title"),
            arxiv=f.text("arxiv", pattern=re.compile(r"\d{4}\.\d{4,5}")),
            venue=f.text("venue"),
            guideline=f.text("guideline"),
        )
        f.finish()
    return papers


def _parse_metric(f: _Fields) -> Metric:
    metric = Metric(
        dataset=f.text("dataset"),
        split=f.text("split"),
        name=f.text("name"),
        value=f.number("value", required=True),
        recipe=f.text("recipe"),
    )
    f.finish()
    return metric


def _parse_weight(f: _Fields) -> WeightSource:
    kind = f.text("kind", choices=tuple(WEIGHT_KINDS))
    weight = WeightSource(
        tag=f.text("tag", pattern=_TAG_RE),
        kind=kind,
        license=f.text("license"),
        # a conversion must say what it converts; the zoo's own weights must say where they are
        source=f.text("source", required=kind in ("exact", "init"), pattern=_HUB_ID_RE),
        hub_id=f.text("hub_id", required=kind == "trained", pattern=_HUB_ID_RE),
        revision=f.text("revision", required=kind == "trained"),
        sha256=f.text("sha256", required=kind == "trained", pattern=_SHA256_RE),
        metrics=tuple(_parse_metric(m) for m in f.objects("metrics")),
        notes=f.text("notes", required=False, default=""),
    )
    f.finish()
    return weight


def _parse_variant(path: Path, papers: dict[str, Paper]) -> Variant:
    f = _Fields(path, "", _read_json(path))
    name = f.text("name", pattern=_NAME_RE)
    if name != path.stem:
        raise f.error("name", f"{name!r} must equal the file name {path.stem!r}")
    paper = f.text("paper")
    if paper not in papers:
        raise f.error("paper", f"{paper!r} is not a paper in {PAPERS_FILE}: {', '.join(papers)}")
    weights = tuple(_parse_weight(w) for w in f.objects("weights"))
    tags = [w.tag for w in weights]
    for i, tag in enumerate(tags):
        if tag in tags[:i]:
            raise f.error(f"weights[{i}].tag", f"duplicate tag {tag!r}")
    family = f.text("family", choices=FAMILIES)
    variant = Variant(
        name=name,
        paper=paper,
        family=family,
        base_architecture=f.text("base_architecture"),
        summary=f.text("summary"),
        weights=weights,
        params_m=f.number("params_m"),
        gflops=f.number("gflops"),
        config=f.text("config", required=family == "mmseg"),
        path=path,
    )
    f.finish()
    return variant


REGISTRY_ENV = "GUIDEZOO_REGISTRY_DIR"


def default_registry_dir() -> Path:
    """``$GUIDEZOO_REGISTRY_DIR`` when set (a registry of your own, e.g. with your published
    checkpoints), else the packaged manifest (``zoo._registry``) or, in an uninstalled
    checkout, ``registry/``. Read once, when ``zoo`` registers its timm models."""
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV])
    try:
        return Path(str(resources.files("zoo._registry")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "registry"


def load_registry(directory: str | Path | None = None) -> Registry:
    """Read and validate every manifest file; raise :class:`RegistryError` on the first problem."""
    if directory is None:
        return _load_default_registry()
    return _load(Path(directory))


@functools.cache
def _load_default_registry() -> Registry:
    return _load(default_registry_dir())


def forget_loaded_registry() -> None:
    """Drop the cached default registry, after a command wrote to its files."""
    _load_default_registry.cache_clear()


def _load(directory: Path) -> Registry:
    papers_path = directory / PAPERS_FILE
    if not papers_path.is_file():
        raise RegistryError(papers_path, "<file>", "missing: the registry needs its papers file")
    papers = _parse_papers(papers_path)
    variants = {}
    for path in sorted(directory.glob("*.json")):
        if path.name != PAPERS_FILE:
            variant = _parse_variant(path, papers)
            variants[variant.name] = variant
    return Registry(papers=papers, variants=variants, directory=directory)
