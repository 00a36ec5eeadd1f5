"""Atlas from its wheel on the distribution's own Python (/usr/bin/python3: 3.11.2 on
Debian 12), outside the checkout: the data it reads at run time (schemas, unit and
message templates, the example manifests) comes from the wheel, and the supported
Python runs validate, plan and render. The system-scope tests (test_system_scope.py)
run the services themselves on this Python under a real PID-1 systemd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.examples import EXAMPLE, PROJECT

DISTRO_PYTHON = Path("/usr/bin/python3")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def installed(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DISTRO_PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: the distribution's /usr/bin/python3 must be tested")
        pytest.skip("no /usr/bin/python3 on this machine")
    venv = tmp_path_factory.mktemp("distro") / "venv"
    subprocess.run([str(DISTRO_PYTHON), "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--disable-pip-version-check", "--find-links", str(wheelhouse), "atlas"],
        check=True, timeout=300,
    )  # fmt: skip
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(venv / "bin/atlas"), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_the_wheel_runs_on_the_distributions_python_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    version = subprocess.run(
        [str(installed / "bin/python"), "-c", "import sys, atlas, seams.resources as r; "
         "print(sys.version.split()[0], atlas.__file__, r.DATA_ROOT)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert version[0] == subprocess.run(
        [str(DISTRO_PYTHON), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert str(PROJECT) not in version[1] and str(PROJECT) not in version[2], version
    manifests = shutil.copytree(EXAMPLE, tmp_path / "manifests")
    assert run(installed, "--version", cwd=tmp_path).stdout.startswith("atlas ")
    valid = run(installed, "validate", str(manifests), cwd=Path("/"))
    assert valid.returncode == 0, valid.stderr
    # plan and render from git, as a host does: every unit and config file in the plan
    subprocess.run(["git", "init", "-q", "-b", "main", str(manifests)], check=True)
    subprocess.run(["git", "-C", str(manifests), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(manifests), "-c", "user.name=t", "-c", "user.email=t@t",
         "commit", "-qm", "manifests"], check=True,
    )  # fmt: skip
    plan = run(
        installed, "reconcile", "--dry-run", "--repo", str(manifests), "--env", "development",
        "--scope", "user", "--root", str(tmp_path / "host"), "-o", "json", cwd=Path("/"),
    )  # fmt: skip
    assert plan.returncode == 2, plan.stderr  # a dry run that found changes
    targets = {a.get("target", "") for a in json.loads(plan.stdout)["actions"]}
    assert any(t.endswith("atlas-api.service") for t in targets), targets
    assert any(t.endswith("monitoring.json") for t in targets), targets
    assert "Traceback" not in plan.stderr + valid.stderr
