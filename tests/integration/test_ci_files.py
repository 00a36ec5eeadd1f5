"""The shipped CI files run ``atlas plan`` as their comments say: the script of the
GitHub workflow's "plan" step and of the GitLab job, run by bash in a clone of a real
repository with a base and a pull-request branch, write the markdown comment and
report the plan's exit code (0 no changes, 2 changes, 1 error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.git import bare_origin, commit, example_repo, git

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/plan.yml"
GITLAB = ROOT / "examples/ci/gitlab-ci.yml"


def github_script() -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["plan"]["steps"]
    return next(step["run"] for step in steps if step.get("id") == "plan")


def gitlab_script() -> str:
    return yaml.safe_load(GITLAB.read_text())["atlas-plan"]["script"][0]


SCRIPTS = {"github": github_script, "gitlab": gitlab_script}


@pytest.fixture
def pull_request(tmp_path: Path):
    """A clone of a remote holding main and one pull-request branch, as CI checks it out."""
    work = example_repo(tmp_path / "ops")
    origin = bare_origin(tmp_path / "origin.git", work)

    def open_pr(branch: str, path: str, old: str, new: str) -> tuple[Path, str]:
        git(work, "checkout", "-q", "-b", branch, "main")
        head = commit(work, path, old, new, f"change {path}")
        git(work, "push", "-q", "origin", branch)
        clone = tmp_path / f"ci-{branch}"
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
        git(clone, "checkout", "-q", head)
        return clone, head

    return open_pr


def run_ci(kind: str, checkout: Path, head: str) -> tuple[int, str]:
    """The CI script in ``checkout``; returns (the exit code it reports, comment.md)."""
    output = checkout / "github-output"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ATLAS_MANIFESTS": ".",
        "ATLAS_BASE": "origin/main",
        "ATLAS_HEAD": head,
        "GITHUB_OUTPUT": str(output),
    }
    script = SCRIPTS[kind]()
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # the script itself never fails
    if kind == "github":
        code = output.read_text().strip()
        assert code.startswith("exit-code=")
        value = int(code.removeprefix("exit-code="))
    else:
        value = int((checkout / "plan.env").read_text().strip().removeprefix("ATLAS_PLAN_EXIT="))
    return value, (checkout / "comment.md").read_text()


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_change_is_posted_as_a_markdown_plan_and_exits_2(kind: str, pull_request) -> None:
    checkout, head = pull_request("slower", "base/sources.yaml", "interval: 1h", "interval: 3h")
    code, comment = run_ci(kind, checkout, head)
    assert code == 2
    assert comment.startswith("<!-- atlas-plan -->\n### Atlas plan ")
    assert "| restart | `atlas-core.service` |" in comment
    assert "#### errors" not in comment and "#### atlas validate" not in comment


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_no_change_exits_0(kind: str, pull_request) -> None:
    checkout, head = pull_request("prose", "base/sources.yaml", "\n", "\n# a comment\n")
    code, comment = run_ci(kind, checkout, head)
    assert code == 0, comment
    assert comment.startswith("<!-- atlas-plan -->\n### Atlas plan ")


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_invalid_manifests_exit_1_with_the_errors_in_the_comment(kind: str, pull_request) -> None:
    checkout, head = pull_request(
        "broken", "base/sources.yaml", "interval: 1h", "interval: sometimes"
    )
    code, comment = run_ci(kind, checkout, head)
    assert code == 1
    assert "`base/sources.yaml:11` Source/welcome: spec.interval: expected a duration" in comment
    assert "#### atlas validate" in comment
    assert "base/sources.yaml:11" in comment.split("#### atlas validate")[1]


def test_the_workflow_fails_only_on_exit_code_1() -> None:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["plan"]["steps"]
    status = next(step["run"] for step in steps if step.get("name") == "status")
    assert status.strip() == 'test "${{ steps.plan.outputs.exit-code }}" != 1'
