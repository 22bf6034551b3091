"""Weights from the Hugging Face Hub: safetensors only, sha256-verified for the zoo's own.

timm's normal path downloads with ``hf_hub_download``; the zoo fetches the same file through
the same call first, so it can refuse what it must not load and verify what it publishes:

- only ``model.safetensors`` is ever loaded: a repository that offers only pickles
  (``pytorch_model.bin``, ``*.pth``) is refused with a clear message, never unpickled;
- a checkpoint the zoo trained and published is checked against the registry's sha256; a
  mismatch is an error that names both hashes and leaves the file where it is (nothing the
  user has is deleted).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

HUB_WEIGHTS_FILE = "model.safetensors"
PICKLE_FILES = ("pytorch_model.bin", "model.pth", "model.pt", "pytorch_model.pth")


class UnsafeWeightsError(RuntimeError):
    """The source has no safetensors file; the zoo does not unpickle."""


class ChecksumMismatchError(RuntimeError):
    """A downloaded checkpoint is not the one the registry records."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pickles_offered(repo_id: str, revision: str | None) -> list[str]:
    """Pickle files of the repo, as far as can be seen (the local cache, offline)."""
    from huggingface_hub import try_to_load_from_cache

    found = []
    for name in PICKLE_FILES:
        cached = try_to_load_from_cache(repo_id, name, revision=revision)
        if isinstance(cached, str):
            found.append(name)
    if not found:
        try:
            from huggingface_hub import HfApi
            from huggingface_hub.utils import is_offline_mode

            if not is_offline_mode():
                files = HfApi().list_repo_files(repo_id, revision=revision)
                found = [f for f in files if f.endswith((".bin", ".pth", ".pt"))]
        except Exception:  # listing is only for the message; the refusal stands regardless
            pass
    return found


def fetch_safetensors(
    repo_id: str, *, revision: str | None = None, sha256: str | None = None
) -> Path:
    """The local path of ``model.safetensors`` of ``repo_id`` (downloaded, or from the Hugging
    Face cache), checked against ``sha256`` when given."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = Path(hf_hub_download(repo_id, HUB_WEIGHTS_FILE, revision=revision))
    except EntryNotFoundError as error:
        pickles = _pickles_offered(repo_id, revision)
        if pickles:
            raise UnsafeWeightsError(
                f"{repo_id} offers only pickled weights ({', '.join(pickles)}) and no "
                f"{HUB_WEIGHTS_FILE}: the zoo loads safetensors only and never unpickles a "
                "downloaded file. Convert it to safetensors yourself if you trust it, and "
                "pass it with pretrained_cfg_overlay=dict(file='....safetensors')."
            ) from None
        raise error
    if sha256 is not None:
        found = sha256_of(path)
        if found != sha256:
            raise ChecksumMismatchError(
                f"{repo_id}@{revision or 'main'}: {HUB_WEIGHTS_FILE} has sha256 {found}, but "
                f"the registry records {sha256}. Nothing was loaded and nothing was deleted; "
                f"the file is at {path}. Remove it from the cache (huggingface-cli delete-cache) "
                "to download it again, or update the registry if the repository changed on "
                "purpose."
            )
    return path


def load_checkpoint_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a local checkpoint, without unpickling arbitrary objects: a
    ``.safetensors`` file, or a ``.pth`` that ``torch.load(weights_only=True)`` reads (its
    ``state_dict`` entry if it has one). Anything else is :class:`UnsafeWeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: {path} is not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UnsafeWeightsError(
            f"checkpoint: {path} does not load with torch.load(weights_only=True) "
            f"({type(error).__name__}); it is not unpickled. mmengine checkpoints carry "
            "pickled training state: use the .safetensors that tools/train.py writes beside it."
        ) from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnsafeWeightsError(f"checkpoint: {path} holds no state dict of tensors")
    return state
