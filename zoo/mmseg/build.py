"""Building mmseg models from configs to inspect or to load weights into (audit,
measurements, publishing), not to train."""

from __future__ import annotations

from pathlib import Path

import torch


def without_sync_bn(node):
    """A config node with SyncBN -> BN: SyncBN needs a process group, and the two have the
    same parameters and arithmetic."""
    if isinstance(node, dict):
        return {
            k: "BN" if k == "type" and v == "SyncBN" else without_sync_bn(v)
            for k, v in node.items()
        }
    if isinstance(node, list | tuple):
        return type(node)(without_sync_bn(v) for v in node)
    return node


def load_config(config: str | Path):
    """An mmengine Config from a path, or from the name of a zoo config."""
    from mmengine.config import Config

    from zoo.configs import config_path, list_configs

    path = Path(config)
    if not path.is_file():
        if str(config).removesuffix(".py") not in list_configs():
            raise ValueError(
                f"config: {config} is neither a file nor a zoo config (zoo configs list)"
            )
        path = config_path(str(config))
    return Config.fromfile(str(path))


def build_for_inspection(cfg, device: str = "meta") -> torch.nn.Module:
    """The config's model in eval mode, on ``device`` (``meta``: shapes only, instant),
    without SyncBN (BN has the same parameters and buffers, so checkpoints load the same)
    and without downloading pretrained weights."""
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import zoo.mmseg  # noqa: F401  (the zoo's modules)

    register_all_modules()
    model_cfg = without_sync_bn(cfg.model.to_dict())
    model_cfg["pretrained"] = None
    with torch.device(device):
        return MODELS.build(model_cfg).eval()


def crop_size_of(cfg) -> tuple[int, int]:
    """The training crop: the config's ``crop_size``, else its data preprocessor's size."""
    crop = cfg.get("crop_size") or cfg.model.get("data_preprocessor", {}).get("size")
    if crop is None:
        raise ValueError("config: has neither crop_size nor model.data_preprocessor.size")
    return (crop, crop) if isinstance(crop, int) else tuple(crop)
