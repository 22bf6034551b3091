import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from zoo.cli import build_parser, main
from zoo.hub.registry import load_registry

SUBCOMMANDS = [
    "list", "doctor", "demo", "erf", "dead-pixel", "robustness", "audit", "atrous-rates", "configs",
    "cards", "registry", "publish",
]  # fmt: skip


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"guidezoo {zoo.__version__}"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: zoo {command}" in capsys.readouterr().out


def test_subcommands_are_all_tested():
    subparsers = build_parser()._subparsers._group_actions[0].choices
    assert sorted(subparsers) == sorted(SUBCOMMANDS)


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_list_table_and_json_agree_with_the_registry(capsys):
    registry = load_registry()
    assert main(["list"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == [
        "variant",
        "paper",
        "family",
        "base",
        "architecture",
        "weights",
    ]
    assert f"({len(registry)} variant(s) registered in {registry.directory})" in table
    assert main(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == [v.name for v in registry]


def test_doctor_json(capsys):
    code = main(["doctor", "--json"])
    findings = json.loads(capsys.readouterr().out)
    assert {"check", "status", "found", "fix"} == set(findings[0])
    assert code == (1 if any(f["status"] == "FAIL" for f in findings) else 0)


def test_demo_prints_environment_and_variants(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert f"guidezoo {zoo.__version__} environment" in out
    assert "variant(s) registered" in out
    header = next(line for line in out.splitlines() if line.startswith("variant "))
    assert header.split()[:3] == ["variant", "paper", "family"]


def test_console_script_is_installed():
    script = shutil.which("zoo", path=str(Path(sys.executable).parent))
    assert script, "the 'zoo' console script is not installed next to this interpreter"
    result = subprocess.run([script, "list"], capture_output=True, text=True, check=True)
    assert "variant(s) registered" in result.stdout


def test_configs_list_path_copy(tmp_path, capsys):
    assert main(["configs", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128" in names
    assert main(["configs", "path", names[0]]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_file()
    assert path.read_text().startswith("#")
    assert main(["configs", "copy", names[0], str(tmp_path)]) == 0
    copied = Path(capsys.readouterr().out.strip())
    assert copied.read_text() == path.read_text()
    with pytest.raises(SystemExit, match="exists"):
        main(["configs", "copy", names[0], str(tmp_path)])
    assert main(["configs", "copy", names[0], str(tmp_path), "--force"]) == 0
    with pytest.raises(SystemExit, match="no zoo config"):
        main(["configs", "path", "nope"])
    with pytest.raises(SystemExit, match="one NAME"):
        main(["configs", "path"])
