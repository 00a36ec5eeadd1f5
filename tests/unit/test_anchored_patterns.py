"""A pattern means the whole value: a trailing newline is not "the end" (issue 11).

Python's ``$`` also matches before a final newline; JSON Schema patterns are ECMA-262,
where it does not. Every validator that anchors a name, a token or a schema field is
checked here with the value that slipped through: a valid one plus ``"\\n"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas.api.params import BadRequest, check_source
from atlas.services.backup import NAME as BACKUP_NAME
from reconciler.manifests.schema import fast_valid, validator_for
from reconciler.secrets.keys import SECRET_NAME, token_bytes
from seams.ecma import ecma_regex
from tests.unit.test_validate import SOURCE, make_repo, the_problem


def test_a_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/s.yaml": SOURCE.replace("{name}", json.dumps("evil\n"))})
    p = the_problem(tmp_path)
    assert p.line == 4 and "DNS label" in p.message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("url: https://example.com/feed", 'url: "https://example.com/feed\\n"', "spec.url"),
        ("type: rss", 'type: rss\n  interval: "15m\\n"', "spec.interval"),
    ],
)
def test_a_schema_field_with_a_trailing_newline_is_refused(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    text = SOURCE.replace("{name}", "a").replace(old, new)
    make_repo(tmp_path, {"base/s.yaml": text})
    p = the_problem(tmp_path)
    assert p.message.startswith(f"{field}: expected"), p.message


def test_a_slack_channel_with_a_trailing_newline_is_refused_by_both_validators() -> None:
    data = {
        "apiVersion": "atlas/v1",
        "kind": "AlertChannel",
        "metadata": {"name": "ops"},
        "spec": {"type": "slack", "slack": {"urlSecret": "hook", "channel": "#ops\n"}},
    }
    assert not fast_valid("AlertChannel", data)
    errors = list(validator_for("AlertChannel").iter_errors(data))
    assert [list(e.absolute_path) for e in errors] == [["spec", "slack", "channel"]]
    data["spec"]["slack"]["channel"] = "#ops"  # type: ignore[index]
    assert fast_valid("AlertChannel", data)
    assert not list(validator_for("AlertChannel").iter_errors(data))


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^a$", "a", True),
        ("^a$", "a\n", False),
        ("^(a|$)", "\n", False),
        ("^[$]$", "$", True),
        ("^\\$$", "$", True),
        ("^\\d+$", "12", True),
        ("^\\d+$", "١٢", False),  # Arabic-Indic digits are not ECMA's \d
        ("^[\\d]+$", "١", False),
        ("^\\w+$", "é", False),
        ("^.$", "\r", False),
        ("^[^]a]$", "b", True),
        ("^[]a]$", "]", True),
    ],
)
def test_ecma_regex_answers_as_ecma_262(pattern: str, text: str, matches: bool) -> None:
    assert (ecma_regex(pattern).search(text) is not None) is matches


def test_secret_names_and_tokens_are_whole_values() -> None:
    assert SECRET_NAME.match("smtp_password")
    assert not SECRET_NAME.match("smtp_password\n")
    assert token_bytes("gAAAAA\n") is None


def test_api_source_parameter_is_a_whole_name() -> None:
    assert check_source("hn") == "hn"
    with pytest.raises(BadRequest, match="is not a source name"):
        check_source("hn\n")


def test_backup_file_names_are_whole_names() -> None:
    assert BACKUP_NAME.match("atlas-20250101T000000Z.db")
    assert not BACKUP_NAME.match("atlas-20250101T000000Z.db\n")


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("Environment", {"database": {"path": "atlas.db\n"}}, "spec.database.path"),
        ("Environment", {"database": {"path": "data\n/../../x"}}, "spec.database.path"),
        ("BackupPolicy", {"schedule": "daily", "destination": "backups\n"}, "spec.destination"),
        ("BackupPolicy", {"schedule": "daily", "destination": "a\tb"}, "spec.destination"),
    ],
)
def test_a_relative_path_with_a_control_character_is_refused(
    tmp_path: Path, kind: str, spec: dict, field: str
) -> None:
    name = "dev" if kind == "Environment" else "b"
    doc = f"apiVersion: atlas/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {json.dumps(spec)}\n"
    if kind == "Environment":
        make_repo(tmp_path, {}, env=doc)
    else:
        make_repo(tmp_path, {"base/b.yaml": doc})
    p = the_problem(tmp_path)
    assert p.message.startswith(f"{field}: expected a relative path"), p.message
    assert "without control characters" in p.message
