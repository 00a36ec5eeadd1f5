"""Versioned schemas: an atlas/v1alpha1 manifest is refused with a message naming
``atlas migrate PATH``, and ``atlas migrate`` rewrites it as atlas/v1 keeping
comments, order and quoting — the example repository written in v1alpha1 comes back
byte for byte — idempotently, with --dry-run/--check changing nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifests.envelope import SUPERSEDED_API_VERSIONS
from reconciler.manifests.migrate import SUPERSEDED, convert, migrate_text
from tests.support.cli import Atlas
from tests.support.examples import EXAMPLE

LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR"}


def to_v1alpha1(text: str, name: str) -> str:
    """The same manifests as an operator would have written them for atlas/v1alpha1."""
    text = re.sub(r"(?m)^apiVersion: atlas/v1$", "apiVersion: atlas/v1alpha1", text)
    if name == "sources.yaml":
        text = re.sub(r"(?m)^  interval:", "  pollInterval:", text)
    if name == "environment.yaml":
        text = re.sub(r"(?m)^  secrets:", "  secretsRef:", text)
        text = text.replace("{listen:", "{bindAddress:")
        text = text.replace("webhookSecret:", "webhookSecretRef:")
        text = re.sub(r"logLevel: (\w+)", lambda m: f"logLevel: {LEVELS[m.group(1)]}", text)
    if name == "alerting.yaml":
        text = text.replace("passwordSecret:", "passwordSecretRef:")
        text = text.replace("urlSecret:", "urlSecretRef:")
    if name == "backup.yaml":
        text = text.replace("encryptionKeySecret:", "encryptionKeySecretRef:")
    if name == "secrets.yaml":
        text = re.sub(r"(?m)^  data:", "  encryptedData:", text)
    return text


@pytest.fixture
def old_repo(example_repo: Path) -> Path:
    for path in example_repo.rglob("*.yaml"):
        path.write_text(to_v1alpha1(path.read_text(), path.name))
    return example_repo


def files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.yaml"))}


def test_validation_refuses_v1alpha1_naming_the_command(atlas: Atlas, old_repo: Path) -> None:
    assert SUPERSEDED_API_VERSIONS == SUPERSEDED
    r = atlas("validate", old_repo, "-o", "json")
    assert r.code == 1
    errors = json.loads(r.out)["errors"]
    refused = [e for e in errors if "atlas/v1alpha1" in e["message"]]
    every_doc = sum(p.read_text().count("apiVersion:") for p in old_repo.rglob("*.yaml"))
    assert len(refused) == every_doc
    first = next(e for e in refused if e["file"].endswith("environments/staging/environment.yaml"))
    assert first["line"] == 1 and first["ref"] == "Environment/staging"
    assert "`atlas migrate PATH`" in first["message"]
    assert "docs/migrations.md" in first["message"]


def test_migrate_restores_the_example_byte_for_byte(
    atlas: Atlas, old_repo: Path, example_keys: dict[str, Path]
) -> None:
    before = files(old_repo)
    dry = atlas("migrate", old_repo, "--dry-run")
    assert dry.code == 2, dry.err
    assert files(old_repo) == before, "--dry-run writes nothing"
    assert f"+++ {old_repo}/environments/staging/environment.yaml (migrated)" in dry.out
    assert "\n-  secretsRef: staging-secrets\n" in dry.out
    assert "\n+  secrets: staging-secrets\n" in dry.out
    assert (
        "environments/production/environment.yaml: Environment/production: apiVersion "
        "atlas/v1alpha1 → atlas/v1; spec.secretsRef → spec.secrets; spec.api.bindAddress → "
        "spec.api.listen; spec.reconciler.webhookSecretRef → spec.reconciler.webhookSecret; "
        "spec.logLevel: WARN → warning" in dry.out
    )
    check = atlas("migrate", old_repo, "--check", "-o", "json")
    assert check.code == 2 and json.loads(check.out)["dryRun"] is True
    r = atlas("migrate", old_repo)
    assert r.code == 0, r.err
    assert files(old_repo) == files(EXAMPLE)
    assert atlas("validate", old_repo).code == 0
    got = atlas(
        "secrets",
        "get",
        "production",
        "smtp_password",
        "--repo",
        old_repo,
        "--key-file",
        example_keys["production"],
    )
    assert got.code == 0, "tokens stay bound to their names"
    # idempotent
    again = atlas("migrate", old_repo)
    assert again.code == 0 and "nothing to migrate" in again.err
    assert atlas("migrate", old_repo, "--check").code == 0


def test_one_file_can_be_migrated_and_mode_is_kept(atlas: Atlas, old_repo: Path) -> None:
    path = old_repo / "environments/staging/environment.yaml"
    path.chmod(0o640)
    r = atlas("migrate", path)
    assert r.code == 0
    assert path.read_text() == (EXAMPLE / "environments/staging/environment.yaml").read_text()
    assert path.stat().st_mode & 0o777 == 0o640
    assert (old_repo / "environments/staging/secrets.yaml").read_text().count("v1alpha1") == 1


def test_comments_order_and_quotes_survive(tmp_path: Path) -> None:
    text = (
        "# top comment\n"
        "---\n"
        "apiVersion: atlas/v1alpha1  # the old version\n"
        "kind: AlertChannel\n"
        "metadata: {name: ops}\n"
        "spec:\n"
        "  type: email\n"
        "  email:\n"
        "    host: smtp.example.com\n"
        "    # the password lives in Secrets\n"
        "    passwordSecretRef: 'smtp_password'   # quoted on purpose\n"
        "    from: atlas@example.com\n"
        "    to:\n"
        "      - ops@example.com\n"
    )
    result = migrate_text(text, tmp_path / "a.yaml", "a.yaml")
    assert result.after == (
        text.replace("atlas/v1alpha1  #", "atlas/v1        #").replace(
            "passwordSecretRef: 'smtp_password'   #", "passwordSecret: 'smtp_password'      #"
        )
    )
    assert result.changes == (
        (
            "AlertChannel/ops",
            (
                "apiVersion atlas/v1alpha1 → atlas/v1",
                "spec.email.passwordSecretRef → spec.email.passwordSecret",
            ),
        ),
    )
    assert migrate_text(result.after, tmp_path / "a.yaml", "a.yaml").changed is False


def test_convert_works_on_plain_data_and_leaves_v1_alone() -> None:
    doc = {
        "apiVersion": "atlas/v1alpha1",
        "kind": "Source",
        "metadata": {"name": "s"},
        "spec": {"type": "rss", "pollInterval": "5m", "url": "https://x.invalid/"},
    }
    assert convert(doc) == [
        "apiVersion atlas/v1alpha1 → atlas/v1",
        "spec.pollInterval → spec.interval",
    ]
    assert list(doc["spec"]) == ["type", "interval", "url"]
    assert convert(doc) == []
    assert convert({"apiVersion": "atlas/v1", "kind": "Source", "spec": {"pollInterval": 1}}) == []
    assert convert(["not", "a", "mapping"]) == []


def test_a_document_with_both_names_is_refused_with_its_line(tmp_path: Path) -> None:
    text = (
        "apiVersion: atlas/v1alpha1\nkind: Environment\nmetadata:\n  name: staging\nspec:\n"
        "  secrets: a\n  secretsRef: b\n"
    )
    with pytest.raises(ManifestError) as err:
        migrate_text(text, tmp_path / "e.yaml", "e.yaml")
    [problem] = err.value.problems
    assert (problem.file, problem.line, problem.ref) == ("e.yaml", 7, "Environment/staging")
    assert "both spec.secretsRef (atlas/v1alpha1) and spec.secrets are set" in problem.message


def test_an_unreadable_file_stops_migrate_before_any_write(atlas: Atlas, old_repo: Path) -> None:
    (old_repo / "base" / "broken.yaml").write_text("apiVersion: atlas/v1alpha1\nkind: [\n")
    before = files(old_repo)
    r = atlas("migrate", old_repo)
    assert r.code == 1
    assert f"{old_repo}/base/broken.yaml:" in r.err and "invalid YAML" in r.err
    assert files(old_repo) == before
    assert atlas("migrate", old_repo / "nowhere").code == 1
