"""tools/install_mmcv.sh: the paths that run in seconds (the source build takes 20 minutes)."""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "install_mmcv.sh"


def run_script(python, tmp_path, **env):
    return subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHON": str(python), "GUIDEZOO_WHEEL_CACHE": str(tmp_path), **env},
    )


@pytest.mark.mmseg
def test_verified_install_is_left_alone(tmp_path):
    result = run_script(sys.executable, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "mmcv 2.1.0 with compiled ops is already installed" in result.stderr


def test_refuses_an_environment_without_torch(tmp_path):
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    result = run_script(bare / "bin" / "python", tmp_path)
    assert result.returncode != 0
    assert "torch is not importable" in result.stderr
