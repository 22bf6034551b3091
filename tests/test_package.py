"""Packaging promises: a light, offline ``import zoo``; a wheel that carries its registry."""

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import zoo

REPO = Path(__file__).resolve().parents[1]
REPO_FILES_TO_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def run_python(code, **kwargs):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def test_version_has_one_source():
    assert version("guidezoo") == zoo.__version__


def test_import_zoo_stays_light():
    result = run_python(
        """
        import sys
        import zoo, zoo.hub, zoo.cli, zoo.doctor
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mmseg', 'mmcv', 'mmengine'))
        assert not heavy, heavy
        """
    )
    assert result.returncode == 0, result.stderr


def test_import_zoo_touches_no_network():
    result = run_python(
        """
        import socket

        def refuse(*args, **kwargs):
            raise AssertionError(f"network access at import: {args}")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        import zoo, zoo.hub, zoo.cli
        zoo.hub.load_registry()
        """
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory):
    """Build guidezoo's wheel from a copy of the tree (keeps build/ out of the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=REPO_FILES_TO_SKIP)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(source),
        ],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("guidezoo-*.whl")
    return wheel


def test_wheel_contains_the_registry(built_wheel):
    names = zipfile.ZipFile(built_wheel).namelist()
    shipped = sorted(p.name for p in (REPO / "registry").glob("*.json"))
    assert shipped, "the repository's registry has no manifest files"
    for name in shipped:
        assert f"zoo/_registry/{name}" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    # every module and data file of the package ships (pyproject lists them explicitly)
    for source in [*(REPO / "zoo").rglob("*.py"), *(REPO / "zoo").rglob("*.json")]:
        assert source.relative_to(REPO).as_posix() in names, source


@pytest.fixture(scope="module")
def installed_site(built_wheel, tmp_path_factory):
    """The wheel installed (no dependencies) into a folder of its own."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(built_wheel)],
        check=True,
    )  # fmt: skip
    return site


def test_installed_wheel_loads_its_own_registry(installed_site, tmp_path):
    site = installed_site
    result = run_python(
        """
        import zoo
        from zoo.hub.registry import load_registry
        registry = load_registry()
        assert zoo.__file__.startswith(SITE), zoo.__file__
        assert str(registry.directory).startswith(SITE), registry.directory
        # package data beside the modules: the *_gncal group tables
        import timm
        from zoo.models import resnet_gncal
        assert str(resnet_gncal.GROUPS_FILE).startswith(SITE), resnet_gncal.GROUPS_FILE
        timm.create_model("resnet18_gncal")
        print(len(registry.papers))
        """.replace("SITE", repr(str(site))),
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8"


@pytest.mark.mmseg
def test_a_user_config_inherits_a_config_of_the_installed_wheel(installed_site, tmp_path):
    """The documented way (zoo.configs): inherit by the path ``zoo configs path`` prints."""
    pytest.importorskip("mmseg")
    names = sorted(
        p.relative_to(REPO / "configs").with_suffix("").as_posix()
        for p in (REPO / "configs").rglob("*.py")
        if p.name != "__init__.py"
    )
    result = run_python(
        """
        import subprocess, sys
        from mmengine.config import Config
        import zoo.configs
        assert zoo.configs.list_configs() == NAMES, zoo.configs.list_configs()
        path = subprocess.run(
            [sys.executable, "-m", "zoo.cli", "configs", "path",
             "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        assert path.startswith(SITE), path
        open("mine.py", "w").write(
            f"_base_ = [{path!r}]\\n"
            "norm_cfg = dict(type='BN', requires_grad=True)\\n"
            "model = dict(backbone=dict(norm_cfg=norm_cfg),"
            " decode_head=dict(norm_cfg=norm_cfg), auxiliary_head=dict(norm_cfg=norm_cfg))\\n"
        )
        cfg = Config.fromfile("mine.py")
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        register_all_modules()
        model = MODELS.build(cfg.model)
        import zoo.mmseg
        assert zoo.mmseg.__file__.startswith(SITE), zoo.mmseg.__file__
        print(model.decode_head.dilations)
        """.replace("SITE", repr(str(installed_site))).replace("NAMES", repr(names)),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed_site)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1] == "(1, 21, 42, 63)"
