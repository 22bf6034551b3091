"""The zoo's mmseg configs, from a checkout or an installed wheel (``zoo._configs``).

mmengine 0.10.7 resolves ``scope::path`` only for a fixed list of OpenMMLab packages, so a
user's config cannot say ``zoo::...``. Every zoo config inherits only from ``mmseg::`` bases,
never from a relative path, so it can be used in two ways from anywhere:

- inherit it by absolute path: ``_base_ = ['<output of zoo configs path NAME>']``;
- copy it and edit the copy: ``zoo configs copy NAME DEST``.

Names are the paths below the configs folder without ``.py``, e.g.
``unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128``.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path


def configs_dir() -> Path:
    """The packaged configs (``zoo._configs``) or, in an uninstalled checkout, ``configs/``."""
    try:
        return Path(str(resources.files("zoo._configs")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "configs"


def list_configs() -> list[str]:
    root = configs_dir()
    return sorted(
        p.relative_to(root).with_suffix("").as_posix()
        for p in root.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )


def config_path(name: str) -> Path:
    """The absolute path of config ``name`` (with or without ``.py``)."""
    names = list_configs()
    key = name.removesuffix(".py")
    if key not in names:
        close = [n for n in names if key.split("/")[-1] in n] or names
        raise ValueError(f"name: no zoo config {name!r}; accepted: {', '.join(close)}")
    return configs_dir() / f"{key}.py"


def copy_config(name: str, dest: str | Path, force: bool = False) -> Path:
    """Copy config ``name`` to ``dest`` (a file, or a folder to put it in). An existing file
    is never overwritten unless ``force``."""
    source = config_path(name)
    dest = Path(dest)
    target = dest / source.name if dest.is_dir() else dest
    if target.exists() and not force:
        raise FileExistsError(f"dest: {target} exists; pass force=True (--force) to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
