"""Safetensors checkpoints for mmengine's ``load_from`` and ``init_cfg`` (no unpickling).

mmengine's ``CheckpointLoader`` reads local files with ``torch.load``. Importing
``zoo.mmseg`` registers three more ways in, all loading safetensors only:

- ``load_from = 'work_dirs/run/iter_40000.safetensors'``: a local ``.safetensors`` path;
- ``load_from = 'safetensors:PATH'``: the same, explicitly;
- ``load_from = 'hf-hub:ORG/NAME'`` (or ``ORG/NAME@REVISION``): ``model.safetensors`` of a
  Hub repository, through huggingface_hub's cache, sha256-checked when the registry records
  that repository (``zoo publish``), refused when it offers only pickles.

``init_cfg=dict(type='Pretrained', checkpoint=...)`` goes through the same loader.
"""

from __future__ import annotations

from mmengine.runner.checkpoint import CheckpointLoader

# a path ending in .safetensors that starts with no URL scheme ("s3://", "https:", ...)
LOCAL_SAFETENSORS = r"(?![A-Za-z][A-Za-z0-9+.-]*:)[^\n]*\.safetensors$"


def _load_safetensors(path: str, map_location=None) -> dict:
    from safetensors.torch import load_file

    device = map_location if isinstance(map_location, str) else "cpu"
    return {"state_dict": load_file(path, device=device)}


@CheckpointLoader.register_scheme(prefixes=LOCAL_SAFETENSORS)
def load_from_local_safetensors(filename: str, map_location=None) -> dict:
    return _load_safetensors(filename, map_location)


@CheckpointLoader.register_scheme(prefixes="safetensors:")
def load_from_safetensors_scheme(filename: str, map_location=None) -> dict:
    return _load_safetensors(filename.removeprefix("safetensors:"), map_location)


@CheckpointLoader.register_scheme(prefixes="hf-hub:")
def load_from_hf_hub(filename: str, map_location=None) -> dict:
    from zoo.hub.download import fetch_safetensors
    from zoo.hub.registry import load_registry

    repo_id, _, revision = filename.removeprefix("hf-hub:").partition("@")
    recorded = [
        w for v in load_registry() for w in v.weights if w.kind == "trained" and w.hub_id == repo_id
    ]
    if recorded and not revision:
        weights = recorded[-1]
        path = fetch_safetensors(repo_id, revision=weights.revision, sha256=weights.sha256)
    else:
        path = fetch_safetensors(repo_id, revision=revision or None)
    return _load_safetensors(str(path), map_location)
