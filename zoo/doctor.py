"""``zoo doctor``: is this environment one the zoo works in, and if not, what exactly to do.

Every check reads the running interpreter through :class:`Environment`, so tests can hand in
a fake one (mmcv-lite installed, setuptools 82, ...) instead of breaking a real venv. The
version pins are read from guidezoo's own installed metadata (pyproject.toml is their one
source); the other checks encode the environment facts that cost this project hours.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from zoo import __version__

DISTRIBUTION = "guidezoo"
MMSEG_EXTRA = "mmseg"

OK, FAIL, ABSENT, SKIPPED = "ok", "FAIL", "absent", "skipped"

# mmengine 0.10.7 imports pkg_resources, which warns about its own deprecation on every import;
# the doctor reports what matters about it (is it there) and keeps its output readable.
_PKG_RESOURCES_WARNING = "pkg_resources is deprecated"

# A config that inherits through mmengine's scope syntax, as every zoo config does.
_SCOPE_PROBE_CONFIG = "_base_ = ['mmseg::_base_/default_runtime.py']\n"


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # OK, FAIL, ABSENT (optional part not installed) or SKIPPED
    found: str
    fix: str = ""


class Environment:
    """What the doctor reads from the running interpreter. Tests substitute a fake."""

    python = sys.executable

    def requirements(self) -> list[str]:
        """guidezoo's declared requirements, extras included (PEP 508 strings)."""
        try:
            return importlib.metadata.requires(DISTRIBUTION) or []
        except importlib.metadata.PackageNotFoundError:
            return []

    def version(self, distribution: str) -> str | None:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def import_error(self, module: str) -> str | None:
        """None when ``import module`` works, else the error it raised."""
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_PKG_RESOURCES_WARNING)
                importlib.import_module(module)
        except Exception as err:  # any import failure is a finding, not a crash of the doctor
            return f"{type(err).__name__}: {err}"
        return None

    def mmseg_scope_error(self) -> str | None:
        """None when a config inheriting ``mmseg::...`` loads through mmengine, else the error."""
        try:
            from mmengine.config import Config

            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_PKG_RESOURCES_WARNING)
                probe = Path(tmp) / "scope_probe.py"
                probe.write_text(_SCOPE_PROBE_CONFIG)
                Config.fromfile(str(probe))
        except Exception as err:
            return f"{type(err).__name__}: {err}"
        return None


def _pins(env: Environment) -> tuple[list[Requirement], list[Requirement]]:
    """(core, mmseg extra) requirements declared by guidezoo."""
    core, mmseg = [], []
    for line in env.requirements():
        req = Requirement(line)
        if req.marker is None:
            core.append(req)
        elif req.marker.evaluate({"extra": MMSEG_EXTRA}):
            mmseg.append(req)
    return core, mmseg


def _pip_fix(req: Requirement) -> str:
    return f"pip install '{req.name}{req.specifier}'"


def _version_finding(env: Environment, req: Requirement, fix: str | None = None) -> Finding:
    installed = env.version(req.name)
    wants = f"wants {req.specifier}" if req.specifier else "any version"
    if installed is None:
        return Finding(req.name, FAIL, f"not installed ({wants})", fix or _pip_fix(req))
    try:
        satisfied = req.specifier.contains(Version(installed), prereleases=True)
    except InvalidVersion:
        satisfied = False
    if satisfied:
        return Finding(req.name, OK, f"{installed} ({wants})")
    return Finding(req.name, FAIL, f"{installed} ({wants})", fix or _pip_fix(req))


def _mmcv_script_fix(env: Environment) -> str:
    return (
        f"PYTHON={env.python} bash tools/install_mmcv.sh  (from the guidezoo repository; "
        "installs mmcv 2.1.0 with compiled ops from a wheel or builds it)"
    )


def check_core(env: Environment) -> list[Finding]:
    core, _ = _pins(env)
    if not core:
        return [
            Finding(
                DISTRIBUTION,
                FAIL,
                "not installed as a distribution, so its pins are unknown",
                "pip install -e .  (in a checkout) or pip install guidezoo",
            )
        ]
    findings = [_version_finding(env, req) for req in core]
    # torch and torchvision from different builds fail only when torchvision loads its ops
    error = env.import_error("torchvision")
    if error:
        findings.append(
            Finding(
                "torchvision import",
                FAIL,
                error,
                "install the matching pair: pip install 'torch==2.14.1' 'torchvision==0.29.1'",
            )
        )
    return findings


def check_mmseg(env: Environment) -> list[Finding]:
    _, extra = _pins(env)
    if not any(env.version(name) for name in ("mmengine", "mmcv", "mmcv-lite", "mmsegmentation")):
        return [
            Finding(
                "mmseg extra",
                ABSENT,
                "not installed (only zoo.mmseg and configs/ need it)",
                f"{_mmcv_script_fix(env)}, then pip install 'guidezoo[mmseg]'",
            )
        ]
    findings = []
    if env.version("mmcv-lite") is not None:
        findings.append(
            Finding(
                "mmcv-lite",
                FAIL,
                f"mmcv-lite {env.version('mmcv-lite')} is installed: it has no compiled ops, and "
                "mmseg 1.2.2 imports mmcv.ops at import time",
                f"pip uninstall -y mmcv-lite && {_mmcv_script_fix(env)}",
            )
        )
    for req in extra:
        fix = _mmcv_script_fix(env) if req.name == "mmcv" else None
        finding = _version_finding(env, req, fix)
        if req.name == "setuptools" and finding.status == FAIL:
            finding = Finding(
                finding.check,
                FAIL,
                finding.found + "; mmengine 0.10.7 resolves mmseg:: config paths with "
                "pkg_resources, which setuptools 82 removed",
                finding.fix,
            )
        findings.append(finding)

    if env.version("mmcv") is not None or env.version("mmcv-lite") is not None:
        error = env.import_error("mmcv.ops")
        findings.append(
            Finding("mmcv.ops compiled", OK, "import mmcv.ops works")
            if error is None
            else Finding("mmcv.ops compiled", FAIL, error, _mmcv_script_fix(env))
        )
    if env.version("mmsegmentation") is not None:
        error = env.import_error("mmseg.models")
        findings.append(
            Finding("mmseg import", OK, "import mmseg.models works")
            if error is None
            else Finding(
                "mmseg import",
                FAIL,
                error,
                "resolve the mmcv findings above (mmseg asserts 2.0.0rc4 <= mmcv < 2.2.0)",
            )
        )
    if env.version("mmengine") is None or env.version("mmsegmentation") is None:
        findings.append(Finding("mmseg:: configs", SKIPPED, "needs mmengine and mmsegmentation"))
    else:
        error = env.mmseg_scope_error()
        findings.append(
            Finding("mmseg:: configs", OK, "a config inheriting mmseg::_base_ loads")
            if error is None
            else Finding(
                "mmseg:: configs",
                FAIL,
                error,
                "pip install 'setuptools>=77.0.3,<82' (pkg_resources) and 'mmsegmentation==1.2.2'",
            )
        )
        # the zoo's own mmseg modules, as a config's custom_imports loads them
        error = env.import_error("zoo.mmseg") if error is None else "needs mmseg:: configs"
        findings.append(
            Finding("zoo.mmseg", OK, "custom_imports=['zoo.mmseg'] registers the zoo's modules")
            if error is None
            else Finding("zoo.mmseg", FAIL, error, "resolve the mmseg findings above")
        )
    return findings


def diagnose(env: Environment | None = None) -> list[Finding]:
    env = env or Environment()
    return check_core(env) + check_mmseg(env)


def healthy(findings: list[Finding]) -> bool:
    """True when nothing failed (an optional extra that is absent is not a failure)."""
    return all(f.status != FAIL for f in findings)


def format_report(findings: list[Finding], env: Environment | None = None) -> str:
    env = env or Environment()
    lines = [f"guidezoo {__version__} environment (python {sys.version.split()[0]}: {env.python})"]
    width = max(len(f.check) for f in findings)
    for f in findings:
        lines.append(f"  {f.status:<7} {f.check:<{width}}  {f.found}")
        if f.fix:
            lines.append(f"  {'':<7} {'':<{width}}  fix: {f.fix}")
    problems = sum(f.status == FAIL for f in findings)
    lines.append("no problems found" if not problems else f"{problems} problem(s) found")
    return "\n".join(lines)


def findings_as_dicts(findings: list[Finding]) -> list[dict[str, str]]:
    return [asdict(f) for f in findings]
