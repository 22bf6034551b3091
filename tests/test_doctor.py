"""The doctor against fake environments: each known way to break the stack, and a healthy one."""

import pytest

from zoo import doctor

REQUIREMENTS = [
    "torch==2.14.1",
    "torchvision==0.29.1",
    "timm==1.0.31",
    'mmengine==0.10.7; extra == "mmseg"',
    'mmcv==2.1.0; extra == "mmseg"',
    'mmsegmentation==1.2.2; extra == "mmseg"',
    'setuptools<82,>=77.0.3; extra == "mmseg"',
    'pytest>=8; extra == "dev"',
]
HEALTHY = {
    "torch": "2.14.1",
    "torchvision": "0.29.1",
    "timm": "1.0.31",
    "mmengine": "0.10.7",
    "mmcv": "2.1.0",
    "mmsegmentation": "1.2.2",
    "setuptools": "81.0.0",
    "pytest": "8.0",
}


class FakeEnvironment(doctor.Environment):
    python = "/venv/bin/python"

    def __init__(self, versions, import_errors=None, scope_error=None):
        self.versions = versions
        self.import_errors = import_errors or {}
        self.scope_error = scope_error

    def requirements(self):
        return REQUIREMENTS

    def version(self, distribution):
        return self.versions.get(distribution)

    def import_error(self, module):
        return self.import_errors.get(module)

    def mmseg_scope_error(self):
        return self.scope_error


def by_check(findings):
    return {f.check: f for f in findings}


def test_healthy_environment_passes_every_check():
    findings = doctor.diagnose(FakeEnvironment(HEALTHY))
    assert doctor.healthy(findings)
    assert {f.status for f in findings} == {doctor.OK}
    # dev tools are not the doctor's business; core and the mmseg extra are
    assert "pytest" not in by_check(findings)
    assert "mmseg:: configs" in by_check(findings)


def test_mmcv_lite_is_named_with_its_fix():
    versions = {k: v for k, v in HEALTHY.items() if k != "mmcv"} | {"mmcv-lite": "2.1.0"}
    env = FakeEnvironment(
        versions,
        import_errors={
            "mmcv.ops": "ModuleNotFoundError: No module named 'mmcv._ext'",
            "mmseg.models": "ModuleNotFoundError: No module named 'mmcv._ext'",
        },
    )
    findings = by_check(doctor.diagnose(env))
    assert not doctor.healthy(list(findings.values()))
    lite = findings["mmcv-lite"]
    assert lite.status == doctor.FAIL
    assert "no compiled ops" in lite.found
    assert lite.fix.startswith("pip uninstall -y mmcv-lite && PYTHON=/venv/bin/python bash ")
    assert "tools/install_mmcv.sh" in lite.fix
    assert findings["mmcv.ops compiled"].status == doctor.FAIL
    assert "mmcv._ext" in findings["mmcv.ops compiled"].found
    assert findings["mmcv"].status == doctor.FAIL


def test_setuptools_82_is_named_with_the_pkg_resources_reason():
    env = FakeEnvironment(
        HEALTHY | {"setuptools": "82.0.1"},
        import_errors={},
        scope_error="ModuleNotFoundError: No module named 'pkg_resources'",
    )
    findings = by_check(doctor.diagnose(env))
    setuptools = findings["setuptools"]
    assert setuptools.status == doctor.FAIL
    assert "82.0.1" in setuptools.found
    assert "pkg_resources" in setuptools.found
    assert setuptools.fix == "pip install 'setuptools<82,>=77.0.3'"
    scope = findings["mmseg:: configs"]
    assert scope.status == doctor.FAIL
    assert "pkg_resources" in scope.found
    assert "setuptools>=77.0.3,<82" in scope.fix


def test_wrong_torch_and_mismatched_torchvision_are_failures():
    env = FakeEnvironment(
        HEALTHY | {"torch": "2.13.0+cpu"},
        import_errors={"torchvision": "RuntimeError: operator torchvision::nms does not exist"},
    )
    findings = by_check(doctor.diagnose(env))
    assert findings["torch"].status == doctor.FAIL
    assert findings["torch"].fix == "pip install 'torch==2.14.1'"
    assert findings["torchvision import"].status == doctor.FAIL
    assert "torch==2.14.1" in findings["torchvision import"].fix


def test_missing_mmseg_extra_is_absent_not_broken():
    core_only = {k: HEALTHY[k] for k in ("torch", "torchvision", "timm")}
    findings = doctor.diagnose(FakeEnvironment(core_only))
    assert doctor.healthy(findings)
    extra = by_check(findings)["mmseg extra"]
    assert extra.status == doctor.ABSENT
    assert "guidezoo[mmseg]" in extra.fix


def test_uninstalled_guidezoo_says_so():
    class NotInstalled(FakeEnvironment):
        def requirements(self):
            return []

    findings = by_check(doctor.diagnose(NotInstalled(HEALTHY)))
    assert findings["guidezoo"].status == doctor.FAIL
    assert "pip install" in findings["guidezoo"].fix


def test_report_prints_every_fix():
    env = FakeEnvironment(HEALTHY | {"setuptools": "82.0.1"})
    report = doctor.format_report(doctor.diagnose(env), env)
    assert "fix: pip install 'setuptools<82,>=77.0.3'" in report
    assert report.endswith("1 problem(s) found")


@pytest.mark.mmseg
def test_this_environment_is_healthy():
    """make test installs every extra: the real stack must pass its own doctor."""
    findings = doctor.diagnose()
    assert doctor.healthy(findings), doctor.format_report(findings)
    assert all(f.status == doctor.OK for f in findings), doctor.format_report(findings)


def test_zoo_mmseg_that_fails_to_import_is_reported():
    env = FakeEnvironment(HEALTHY, import_errors={"zoo.mmseg": "ImportError: boom"})
    finding = by_check(doctor.diagnose(env))["zoo.mmseg"]
    assert finding.status == doctor.FAIL
    assert "boom" in finding.found
    assert by_check(doctor.diagnose(FakeEnvironment(HEALTHY)))["zoo.mmseg"].status == doctor.OK
