"""``atlas plan``: what merging a branch would change, from a real git repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas.cli import main
from tests.support.git import example_repo, git


@pytest.fixture
def manifests_git(tmp_path: Path) -> Path:
    return example_repo(tmp_path / "ops")


def commit_on(repo: Path, branch: str, path: str, old: str, new: str) -> None:
    git(repo, "checkout", "-q", "-B", branch, "main")
    file = repo / path
    file.write_text(file.read_text().replace(old, new, 1))
    git(repo, "commit", "-qam", f"change {path}")
    git(repo, "checkout", "-q", "main")


def plan(repo: Path, head: str, env: str, *output: str) -> int:
    """``atlas plan`` of merging ``head`` into main, for ``env``."""
    return main(
        ["plan", "--repo", str(repo), "--base", "main", "--head", head, "--env", env, *output]
    )


def test_markdown_plan_of_a_source_change(manifests_git: Path, capsys) -> None:
    commit_on(manifests_git, "slower", "base/sources.yaml", "interval: 1h", "interval: 3h")
    code = plan(manifests_git, "slower", "development", "--output", "markdown")
    out = capsys.readouterr().out
    assert code == 2
    assert out.startswith("### Atlas plan ")
    assert "| restart | `atlas-core.service` |" in out
    assert "atlas-api.service" not in out.split("<details>")[0]
    assert '+      "intervalSeconds": 10800' in out


def test_no_change_for_an_environment_untouched_by_the_branch(manifests_git: Path, capsys) -> None:
    commit_on(
        manifests_git,
        "dev-only",
        "environments/development/sources.yaml",
        "interval: 5m",
        "interval: 6m",
    )
    code = plan(manifests_git, "dev-only", "staging", "--output", "json")
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["environments"]["staging"]["changes"] is False


def test_secret_change_without_a_key_is_named_from_the_ciphertext(
    manifests_git: Path, example_keys, capsys
) -> None:
    from reconciler.secrets.keys import load_key_file

    ring = load_key_file(example_keys["production"])
    path = manifests_git / "environments/production/secrets.yaml"
    old_line = next(line for line in path.read_text().splitlines() if "smtp_password:" in line)
    new_line = f"    smtp_password: {ring.encrypt('smtp_password', 'rotated-password-value')}"
    commit_on(manifests_git, "rotate", "environments/production/secrets.yaml", old_line, new_line)
    code = plan(manifests_git, "rotate", "production", "--output", "markdown")
    out = capsys.readouterr().out
    assert code == 2
    assert "- `smtp_password` changed" in out
    assert "rotated-password-value" not in out and "production-example-smtp-password" not in out
    assert "| restart | `atlas-monitoring.service` |" in out


def test_invalid_head_is_reported_and_exits_1(manifests_git: Path, capsys) -> None:
    commit_on(manifests_git, "broken", "base/sources.yaml", "interval: 1h", "interval: sometimes")
    code = plan(manifests_git, "broken", "development", "--output", "markdown")
    out = capsys.readouterr().out
    assert code == 1
    assert "validation error(s)" in out
    assert "`base/sources.yaml:11` Source/welcome: spec.interval: expected a duration" in out


def test_unknown_ref_is_a_clear_error(manifests_git: Path, capsys) -> None:
    code = plan(manifests_git, "nope", "development")
    assert code == 1
    assert "no branch, tag or commit named 'nope'" in capsys.readouterr().err
