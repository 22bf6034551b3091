"""``zoo publish``: a trained checkpoint -> a Hugging Face Hub repository, and back into the
registry.

1. The checkpoint (``.safetensors``, or an mmengine/torch ``.pth`` that loads with
   ``weights_only=True``) must load strictly into the variant built by timm.
2. The repo folder: ``model.safetensors``, ``config.json`` in timm's format (so
   ``timm.create_model('hf-hub:ORG/NAME')`` works after ``import zoo``) and ``README.md``, the
   variant's model card rendered with the new weights.
3. ``create_repo`` + ``upload_folder`` with a commit message; a different
   ``model.safetensors`` already on the Hub is never replaced without ``force``.
4. On success the registry records the weights (kind ``trained``: Hub id, revision, sha256,
   license, metrics) and the variant's card in ``model_cards/`` is regenerated. An entry of
   the same tag with other weights is never replaced without ``force``.

``dry_run`` stops after step 2: the folder is written and the plan printed; the Hub and the
registry are not touched.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.hub.download import HUB_WEIGHTS_FILE, UnsafeWeightsError, load_checkpoint_state, sha256_of
from zoo.hub.registry import (
    Metric,
    WeightSource,
    _parse_variant,
    forget_loaded_registry,
    load_registry,
)


class PublishError(RuntimeError):
    """Publishing would overwrite something, or the checkpoint does not fit the variant."""


@dataclass
class PublishPlan:
    variant: str
    repo_id: str
    tag: str
    folder: Path
    sha256: str
    license: str
    commit_message: str
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())

    def describe(self) -> str:
        lines = [f"would upload to {self.repo_id} ({self.commit_message!r}):"]
        lines += [f"  {p.name}  {p.stat().st_size} bytes" for p in self.files]
        lines.append(f"  sha256({HUB_WEIGHTS_FILE}) = {self.sha256}")
        lines.append(f"registry: {self.variant}.{self.tag} (trained) after the upload")
        return "\n".join(lines)

    def weight_entry(self, revision: str | None) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "kind": "trained",
            "hub_id": self.repo_id,
            "revision": revision,
            "sha256": self.sha256,
            "license": self.license,
            "metrics": self.metrics,
            "notes": "",
        }


def parse_metric(text: str) -> dict[str, Any]:
    """``dataset:split:name:value:recipe`` -> a registry metric (recipe may contain ':')."""
    parts = text.split(":", 4)
    if len(parts) != 5:
        raise ValueError(f"metric must be dataset:split:name:value:recipe, got {text!r}")
    dataset, split, name, value, recipe = parts
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"metric value must be a number, got {value!r} in {text!r}") from None
    return {"dataset": dataset, "split": split, "name": name, "value": number, "recipe": recipe}


def prepare_repo_folder(
    checkpoint: str | Path,
    variant: str,
    repo_id: str,
    tag: str,
    out: str | Path,
    *,
    license: str = "apache-2.0",
    metrics: Sequence[str] = (),
    commit_message: str | None = None,
    config: str | Path | None = None,
) -> PublishPlan:
    """Steps 1-2: check the checkpoint against the variant and write the repo folder.

    mmseg variants: the model is built from ``config`` (default: the variant's zoo config),
    and the folder holds that config, resolved, with ``load_from = 'hf-hub:REPO_ID'``,
    instead of timm's ``config.json``."""
    import timm
    from safetensors.torch import save_file
    from timm.models._hub import save_config_for_hf

    import zoo.models  # noqa: F401  (registers the variants)
    from zoo.hub.cards import render_card

    registry = load_registry()
    entry = registry.variant(variant)  # KeyError lists the registered ones
    if config is not None and entry.family != "mmseg":
        raise PublishError(f"config: only mmseg variants take a config; {variant} is timm")
    try:
        state = load_checkpoint_state(checkpoint)
    except (UnsafeWeightsError, FileNotFoundError) as error:
        raise PublishError(str(error)) from None
    if entry.family == "mmseg":
        model, cfg = _mmseg_model(entry, config)
    else:
        model, cfg = timm.create_model(variant), None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise PublishError(f"checkpoint: does not fit {variant}: {error}") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise PublishError(f"out: {out} is not empty; publish writes a fresh folder")
    weights_file = out / HUB_WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights_file)
    if cfg is None:
        save_config_for_hf(model, str(out / "config.json"))
    else:  # the resolved config, loading these weights through mmengine's load_from
        cfg.load_from = f"hf-hub:{repo_id}"
        cfg.dump(str(out / "config.py"))
    plan = PublishPlan(
        variant=variant,
        repo_id=repo_id,
        tag=tag,
        folder=out,
        sha256=sha256_of(weights_file),
        license=license,
        commit_message=commit_message or f"guidezoo: {variant}.{tag}",
        metrics=[parse_metric(m) for m in metrics],
    )
    published = WeightSource(
        tag=tag, kind="trained", license=license, hub_id=repo_id, revision="(this commit)",
        sha256=plan.sha256, metrics=tuple(Metric(**m) for m in plan.metrics),
    )  # fmt: skip
    with_weights = dataclasses.replace(entry, weights=(*entry.weights, published))
    (out / "README.md").write_text(render_card(with_weights, registry), encoding="utf-8")
    return plan


def _mmseg_model(entry, config: str | Path | None):
    from zoo.mmseg.build import build_for_inspection, load_config

    cfg = load_config(config or entry.config)
    return build_for_inspection(cfg, device="cpu"), cfg


def _remote_sha256(api, repo_id: str) -> str | None:
    """sha256 of ``model.safetensors`` on the Hub, or None when the repo has none."""
    if not api.file_exists(repo_id, HUB_WEIGHTS_FILE):
        return None
    (info,) = api.get_paths_info(repo_id, [HUB_WEIGHTS_FILE])
    lfs = getattr(info, "lfs", None)
    sha = getattr(lfs, "sha256", None) if lfs is not None else None
    if sha is None and isinstance(lfs, dict):
        sha = lfs.get("sha256")
    return sha or "(unknown)"


def _check_registry_tag(plan: PublishPlan, *, force: bool, registry_dir: Path | None) -> None:
    """An entry of the plan's tag with other weights is replaced only with ``force``."""
    for existing in load_registry(registry_dir).variant(plan.variant).weights:
        if existing.tag == plan.tag and existing.sha256 != plan.sha256 and not force:
            raise PublishError(
                f"registry: {plan.variant}.{plan.tag} already records other weights ("
                f"{existing.kind}, sha256 {existing.sha256}); nothing was uploaded. Choose "
                "another tag, or pass force to replace it."
            )


def record_trained_weights(
    plan: PublishPlan, revision: str, *, force: bool = False, registry_dir: Path | None = None
) -> Path:
    """Write the published weights into the variant's registry file (validated)."""
    registry = load_registry(registry_dir)
    path = registry.variant(plan.variant).path
    data = json.loads(path.read_text(encoding="utf-8"))
    weights = data.setdefault("weights", [])
    _check_registry_tag(plan, force=force, registry_dir=registry_dir)
    new = plan.weight_entry(revision)
    same_tag = [i for i, w in enumerate(weights) if w.get("tag") == plan.tag]
    if same_tag:
        weights[same_tag[0]] = new
    else:
        weights.append(new)
    text = json.dumps(data, indent=2) + "\n"
    backup = path.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    try:
        _parse_variant(path, registry.papers)
    except Exception:
        path.write_text(backup, encoding="utf-8")  # leave the registry as it was
        raise
    forget_loaded_registry()
    return path


def publish(
    plan: PublishPlan,
    *,
    api=None,
    force: bool = False,
    private: bool = False,
    registry_dir: Path | None = None,
    cards_dir: Path | None = None,
) -> str:
    """Steps 3-4; returns the Hub revision (commit id) of the upload."""
    from huggingface_hub import HfApi

    from zoo.hub.cards import write_cards

    _check_registry_tag(plan, force=force, registry_dir=registry_dir)
    api = api or HfApi()
    api.create_repo(plan.repo_id, repo_type="model", private=private, exist_ok=True)
    remote = _remote_sha256(api, plan.repo_id)
    if remote is not None and remote != plan.sha256 and not force:
        raise PublishError(
            f"{plan.repo_id} already has a different {HUB_WEIGHTS_FILE} (sha256 {remote}, "
            f"this one {plan.sha256}); nothing was uploaded. Pass force to replace it."
        )
    commit = api.upload_folder(
        repo_id=plan.repo_id,
        folder_path=str(plan.folder),
        commit_message=plan.commit_message,
        repo_type="model",
    )
    revision = getattr(commit, "oid", None) or str(commit)
    record_trained_weights(plan, revision, force=force, registry_dir=registry_dir)
    write_cards(cards_dir, load_registry(registry_dir), names=[plan.variant])
    return revision
