"""Validation: every error carries file, line, Kind/name and what was expected."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from atlas.cli import main
from reconciler.errors import Problem
from reconciler.manifests.assemble import assemble, validate_repository
from reconciler.manifests.load import load_repository

ENV = """\
apiVersion: atlas/v1
kind: Environment
metadata: {name: dev}
spec: {}
"""


def make_repo(root: Path, files: dict[str, str], env: str | None = ENV) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    if env is not None and "environments/dev/env.yaml" not in files:
        (root / "environments/dev").mkdir(parents=True, exist_ok=True)
        (root / "environments/dev/env.yaml").write_text(env)
    (root / "base").mkdir(exist_ok=True)
    return root


def problems_of(root: Path, env: str = "dev") -> list[Problem]:
    return list(assemble(load_repository(root), env).problems)


def the_problem(root: Path, env: str = "dev") -> Problem:
    found = problems_of(root, env)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


SOURCE = """\
apiVersion: atlas/v1
kind: Source
metadata:
  name: {name}
spec:
  type: rss
  url: https://example.com/feed
"""


def test_a_minimal_repository_is_valid(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.format(name="a")})
    assert problems_of(tmp_path) == []


def test_unknown_field_points_at_its_own_line(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.format(name="a") + "  intervall: 5m\n"})
    p = the_problem(tmp_path)
    assert (p.file, p.line, p.ref) == ("base/s.yaml", 8, "Source/a")
    assert "unknown field 'intervall'" in p.message and "interval" in p.message


def test_bad_duration_says_what_was_expected(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.format(name="a") + "  interval: 15 minutes\n"})
    p = the_problem(tmp_path)
    assert p.line == 8
    assert p.message == (
        "spec.interval: expected a duration like 30s, 15m, 2h or 1h30m (units ms, s, m, h, d, w); "
        'got "15 minutes"'
    )


def test_missing_required_field(tmp_path: Path) -> None:
    text = "apiVersion: atlas/v1\nkind: Source\nmetadata: {name: a}\nspec:\n  type: rss\n"
    make_repo(tmp_path, {"base/s.yaml": text})
    p = the_problem(tmp_path)
    assert (p.line, p.message) == (4, "spec: expected exactly one of url or urlSecret")


def test_field_that_does_not_apply_to_the_type(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.format(name="a") + "  text: hello\n"})
    p = the_problem(tmp_path)
    assert p.line == 8 and p.message == "spec.text: field 'text' does not apply to type 'rss'"


def test_enum_with_yaml_boolean_hint(tmp_path: Path) -> None:
    text = """\
    apiVersion: atlas/v1
    kind: Deployment
    metadata: {name: svc}
    spec:
      component: services
      version: "1"
      restart: {policy: no}
    """
    make_repo(tmp_path, {"base/d.yaml": text})
    p = the_problem(tmp_path)
    assert p.line == 7
    assert "expected one of always, on-failure, no; got false" in p.message
    assert "quote it" in p.message


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (
            "apiVersion: atlas/v9\nkind: Source\n",
            "unknown apiVersion 'atlas/v9': expected atlas/v1",
        ),
        ("apiVersion: atlas/v1\nkind: Feed\n", 'unknown kind "Feed": expected one of Source'),
        ("kind: Source\n", "missing apiVersion: expected atlas/v1"),
    ],
)
def test_unknown_or_missing_kind_and_version(tmp_path: Path, head: str, message: str) -> None:
    make_repo(tmp_path, {"base/x.yaml": head + "metadata: {name: a}\nspec: {}\n"})
    p = the_problem(tmp_path)
    assert message in p.message and p.file == "base/x.yaml"


@pytest.mark.parametrize("name", ["Hacker_News", "-lead", "x" * 64, "a.b"])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.replace("{name}", json.dumps(name))})
    p = the_problem(tmp_path)
    assert p.line == 4 and "invalid name" in p.message and "DNS label" in p.message


def test_non_mapping_document(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/x.yaml": "- just\n- a list\n"})
    p = the_problem(tmp_path)
    assert p.message == "expected a mapping with apiVersion, kind, metadata and spec; got a list"


def test_duplicate_kind_and_name_in_base(tmp_path: Path) -> None:
    make_repo(
        tmp_path,
        {
            "base/a.yaml": SOURCE.format(name="hn"),
            "base/b.yaml": SOURCE.format(name="hn"),
        },
    )
    p = the_problem(tmp_path)
    assert p.file == "base/b.yaml"
    assert "duplicate Source/hn in base/ (first defined at base/a.yaml:1)" in p.message


def test_all_errors_are_reported_in_one_run(tmp_path: Path) -> None:
    make_repo(
        tmp_path,
        {
            "base/a.yaml": SOURCE.format(name="a") + "  interval: soon\n",
            "base/b.yaml": SOURCE.format(name="b") + "  enabled: maybe\n",
            "base/c.yaml": "- not a mapping\n",
        },
    )
    found = problems_of(tmp_path)
    assert {p.file for p in found} == {"base/a.yaml", "base/b.yaml", "base/c.yaml"}


def test_path_escaping_the_repository(tmp_path: Path) -> None:
    text = "apiVersion: atlas/v1\nkind: Source\nmetadata: {name: f}\nspec:\n  type: file\n  path: ../x\n"
    make_repo(tmp_path / "repo", {"base/s.yaml": text})
    p = the_problem(tmp_path / "repo")
    assert p.line == 6 and "spec.path" in p.message


def test_path_through_a_symlink_out_of_the_repository(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("outside\n")
    root = make_repo(
        tmp_path / "repo",
        {
            "base/s.yaml": "apiVersion: atlas/v1\nkind: Source\nmetadata: {name: f}\n"
            "spec:\n  type: file\n  path: content/link.txt\n",
        },
    )
    (root / "content").mkdir()
    (root / "content/link.txt").symlink_to(tmp_path / "secret.txt")
    p = the_problem(root)
    assert "points outside the repository" in p.message


def test_missing_bundled_file(tmp_path: Path) -> None:
    text = "apiVersion: atlas/v1\nkind: Source\nmetadata: {name: f}\nspec:\n  type: file\n  path: content/no.md\n"
    make_repo(tmp_path, {"base/s.yaml": text})
    assert "no file 'content/no.md' in the repository" in the_problem(tmp_path).message


RULE = """\
apiVersion: atlas/v1
kind: AlertRule
metadata: {name: r}
spec:
  metric: atlas_dlq_size
  op: ">"
  threshold: 1
  channels: [ops, pager]
"""

CHANNEL = """\
apiVersion: atlas/v1
kind: AlertChannel
metadata: {name: ops}
spec:
  type: email
  email: {host: smtp.example.com, from: a@example.com, to: [b@example.com], passwordSecret: smtp_password}
"""


def test_reference_to_missing_channel_and_missing_secrets_document(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/r.yaml": RULE, "base/c.yaml": CHANNEL})
    found = problems_of(tmp_path)
    messages = {(p.file, p.line, p.message) for p in found}
    assert (
        "base/r.yaml",
        8,
        "spec.channels[1]: no AlertChannel named 'pager' (known: ops)",
    ) in messages
    assert any(
        p.file == "base/c.yaml"
        and "refers to secret 'smtp_password'" in p.message
        and "has no Secrets document" in p.message
        for p in found
    )


def test_reference_to_a_secret_the_environment_lacks(tmp_path: Path) -> None:
    env = ENV.replace("spec: {}", "spec: {secrets: dev-secrets}")
    make_repo(
        tmp_path,
        {
            "base/c.yaml": CHANNEL,
            "environments/dev/secrets.yaml": "apiVersion: atlas/v1\nkind: Secrets\nmetadata: {name: dev-secrets}\n"
            "spec:\n  data:\n    other: gAAAAAB\n",
        },
        env=env,
    )
    p = the_problem(tmp_path)
    assert p.file == "base/c.yaml" and p.line == 6
    assert "no secret named 'smtp_password' in environment 'dev' (its secrets: other)" in p.message


def test_environment_must_exist_and_be_named_after_its_folder(tmp_path: Path) -> None:
    make_repo(tmp_path, {}, env=ENV.replace("name: dev", "name: prod"))
    found = problems_of(tmp_path)
    assert any("must be named 'dev'" in p.message and p.line == 3 for p in found)


def test_unknown_environment_names_the_ones_that_exist(tmp_path: Path) -> None:
    make_repo(tmp_path, {})
    p = the_problem(tmp_path, env="prod")
    assert p.message == "unknown environment 'prod': expected one of dev"


def test_environment_documents_do_not_belong_in_base(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/env.yaml": ENV})
    p = the_problem(tmp_path)
    assert "belongs in environments/<env>/, not in base/" in p.message


def test_overlay_merges_maps_deeply_and_replaces_lists(tmp_path: Path) -> None:
    base_rule = (
        RULE.replace("channels: [ops, pager]", "channels: [ops]") + "  labels: {team: a, tier: x}\n"
    )
    overlay = (
        "apiVersion: atlas/v1\nkind: AlertRule\nmetadata: {name: r}\nspec:\n  threshold: 5\n"
        "  labels: {team: b}\n  channels: [ops]\n"
    )
    channel = CHANNEL.replace(", passwordSecret: smtp_password", "")
    make_repo(
        tmp_path,
        {"base/r.yaml": base_rule, "base/c.yaml": channel, "environments/dev/r.yaml": overlay},
    )
    result = assemble(load_repository(tmp_path), "dev")
    assert result.ok, result.problems
    rule = result.get("AlertRule", "r")
    assert rule is not None
    assert rule.spec["threshold"] == 5
    assert rule.spec["labels"] == {"team": "b", "tier": "x"}
    assert rule.spec["metric"] == "atlas_dlq_size"
    assert rule.overlaid_by == ("environments/dev/r.yaml",)


def test_overlay_error_points_into_the_overlay_file(tmp_path: Path) -> None:
    overlay = "apiVersion: atlas/v1\nkind: Source\nmetadata: {name: a}\nspec:\n  interval: often\n"
    make_repo(
        tmp_path, {"base/s.yaml": SOURCE.format(name="a"), "environments/dev/s.yaml": overlay}
    )
    p = the_problem(tmp_path)
    assert (p.file, p.line) == ("environments/dev/s.yaml", 5)


def test_metric_selector_is_checked(tmp_path: Path) -> None:
    channel = CHANNEL.replace(", passwordSecret: smtp_password", "")
    rule = RULE.replace("atlas_dlq_size", "atlas_dlq_size{source=hn}").replace(", pager", "")
    make_repo(tmp_path, {"base/r.yaml": rule, "base/c.yaml": channel})
    p = the_problem(tmp_path)
    assert p.line == 5 and "cannot read label matcher" in p.message


def test_port_collision_between_components(tmp_path: Path) -> None:
    env = ENV.replace("spec: {}", "spec:\n  api: {port: 9101}\n")
    make_repo(tmp_path, {}, env=env)
    p = the_problem(tmp_path)
    assert (
        p.message
        == "spec.api.port: port 9101 is already used by spec.core.metricsPort (default 9101)"
    )
    assert p.line == 5


def test_second_deployment_of_a_component(tmp_path: Path) -> None:
    dep = "apiVersion: atlas/v1\nkind: Deployment\nmetadata: {{name: {n}}}\nspec: {{component: api, version: '1'}}\n"
    make_repo(tmp_path, {"base/a.yaml": dep.format(n="a"), "base/b.yaml": dep.format(n="b")})
    p = the_problem(tmp_path)
    assert "a second Deployment of 'api'" in p.message


def test_example_manifests_validate_in_every_environment() -> None:
    from tests.support.examples import EXAMPLE

    results = validate_repository(load_repository(EXAMPLE))
    assert set(results) == {"development", "staging", "production"}
    assert all(r.ok for r in results.values()), [
        str(p) for r in results.values() for p in r.problems
    ]


def test_validate_command_exit_codes_and_json(tmp_path: Path, capsys) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.format(name="a") + "  interval: soon\n"})
    assert main(["validate", str(tmp_path), "--output", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["errors"][0]["line"] == 8
    assert report["errors"][0]["ref"] == "Source/a"
    assert report["errors"][0]["file"].endswith("base/s.yaml")
    (tmp_path / "base/s.yaml").write_text(SOURCE.format(name="a"))
    assert main(["validate", str(tmp_path), "--env", "dev"]) == 0
    assert main(["validate", str(tmp_path), "--env", "nope"]) == 1
    assert "unknown environment 'nope': expected one of dev" in capsys.readouterr().out


def test_validate_text_output_names_file_and_line(tmp_path: Path, capsys) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.format(name="a") + "  interval: soon\n"})
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/base/s.yaml:8: Source/a: spec.interval: expected a duration" in out


def test_core_replicas_need_a_free_port_range(tmp_path: Path) -> None:
    env = ENV.replace("spec: {}", "spec:\n  core: {metricsPort: 9100}\n")
    dep = (
        "apiVersion: atlas/v1\nkind: Deployment\nmetadata: {name: core}\nspec:\n  component: core\n"
        "  version: '1'\n  replicas: 4\n"
    )
    make_repo(tmp_path, {"base/d.yaml": dep}, env=env)
    p = the_problem(tmp_path)
    assert (p.file, p.line, p.ref) == ("base/d.yaml", 7, "Deployment/core")
    assert "ports 9100-9103, but 9102 is spec.monitoring.metricsPort" in p.message


LOG_CHANNEL = """\
apiVersion: atlas/v1
kind: AlertChannel
metadata: {name: ops}
spec:
  type: log
"""


def test_a_log_channel_needs_nothing_but_its_type(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/c.yaml": LOG_CHANNEL})
    assert problems_of(tmp_path) == []


@pytest.mark.parametrize(
    ("extra", "line", "expected"),
    [
        ("  log: {file: ../x}\n", 6, "spec.log.file"),
        ("  log: {maxFileSize: lots}\n", 6, "spec.log.maxFileSize"),
        ("  webhook: {url: 'http://x'}\n", 6, "spec.webhook"),
    ],
)
def test_bad_log_channel_settings_name_the_field(
    tmp_path: Path, extra: str, line: int, expected: str
) -> None:
    make_repo(tmp_path, {"base/c.yaml": LOG_CHANNEL + extra})
    p = the_problem(tmp_path)
    assert (p.file, p.line) == ("base/c.yaml", line) and expected in p.message, str(p)


def test_control_characters_in_names_and_files_are_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    esc = "\x1b"
    root = make_repo(
        tmp_path,
        {
            "base/kind.yaml": 'apiVersion: atlas/v1\nkind: "Sou\\e[31mrce"\n'
            "metadata: {name: x}\nspec: {}\n",
            f"base/wipe{esc}[2J.yaml": 'apiVersion: atlas/v1\nkind: Source\nmetadata: {name: "a\\u202eb"}\n',
        },
    )
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert esc not in out and "\u202e" not in out, repr(out)
    assert "Sou\\x1b[31mrce/x" in out, out
    assert "wipe\\x1b[2J.yaml" in out, out
    assert "\\u202e" in out, out


def test_problems_print_escaped_wherever_they_are_printed() -> None:
    shown = str(Problem("base/a\x1b.yaml", 3, "Source/a\x07b", "line one\nforged line"))
    assert shown == "base/a\\x1b.yaml:3: Source/a\\x07b: line one\\nforged line"
