"""Plans say "secret smtp_password changed/added/removed" — decided by keyed digests —
and never show a value or an env-file diff: ``atlas plan`` (pull requests, with and
without the key) and ``atlas reconcile --dry-run`` (a host), in text, JSON and Markdown."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from reconciler import pipeline
from reconciler.host.paths import host_layout
from reconciler.inventory import Inventory
from reconciler.render.desired import HostFacts, RenderContext
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets
from reconciler.state import StateStore, state_path
from tests.support.cli import Atlas
from tests.support.examples import example_values
from tests.support.git import GitRepo
from tests.support.leakcheck import LeakCheck

NEW_SMTP = "smtp-password-rotated-9c41d7e2"
CHAT_URL = "https://hooks.chat.invalid/T9/B9/new-channel-5a7"

CHAT_CHANNEL = """
---
apiVersion: atlas/v1
kind: AlertChannel
metadata:
  name: chat
spec:
  type: slack
  slack: {urlSecret: chat_webhook_url, channel: "#atlas"}
"""


@pytest.fixture
def repo(tmp_path: Path, example_keys: dict[str, Path], atlas: Atlas) -> GitRepo:
    """main = the example; branch ``change``: smtp_password changed, chat_webhook_url added
    (and used by a new channel), backup_key no longer used (backups unencrypted)."""
    r = GitRepo(tmp_path / "repo")
    key = example_keys["production"]
    r.branch("change")
    base = ["--repo", r.path, "--key-file", key]
    assert (
        atlas("secrets", "set", "production", "smtp_password", *base, stdin=NEW_SMTP.encode()).code
        == 0
    )
    assert (
        atlas(
            "secrets", "set", "production", "chat_webhook_url", *base, stdin=CHAT_URL.encode()
        ).code
        == 0
    )
    alerting = r.path / "environments/production/alerting.yaml"
    alerting.write_text(alerting.read_text() + CHAT_CHANNEL)
    r.edit("environments/production/backup.yaml", "encrypt: true", "encrypt: false")
    r.commit("production: new SMTP password, a chat channel, unencrypted backups")
    r.git("checkout", "-q", "main")
    return r


def dry_run(repo: GitRepo, root: Path) -> list[object]:
    """``atlas reconcile --dry-run`` of production at the branch ``change`` against ``root``."""
    return ["reconcile", "--dry-run", "--repo", repo.path, "--ref", "change",
            "--env", "production", "--scope", "user", "--root", root]  # fmt: skip


def pr_plan(repo: GitRepo, head: str) -> list[object]:
    """``atlas plan`` of merging ``head`` into main, for production."""
    return ["plan", "--repo", repo.path, "--base", "main", "--head", head, "--env", "production"]


def known(example_keys: dict[str, Path]) -> dict[str, str]:
    values = {f"production {n}": v for n, v in example_values(example_keys)["production"].items()}
    return {**values, "new smtp": NEW_SMTP, "chat url": CHAT_URL}


def host_files(root: Path) -> dict[Path, bytes]:
    """Units, configs and env files under ``root`` (not the reconciler's own state and cache)."""
    return {
        p: p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "reconciler" not in p.relative_to(root).parts
    }


def assert_no_env_diff(text: str) -> None:
    for line in text.splitlines():
        assert not line.lstrip("+- ").startswith("ATLAS_SECRET_"), line
        assert not (line.startswith(("---", "+++")) and line.rstrip().endswith(".env")), line


EXPECTED = [
    ("backup_key", "removed"),
    ("chat_webhook_url", "added"),
    ("smtp_password", "changed"),
]


@pytest.mark.parametrize("with_key", [True, False], ids=["keyed", "sealed"])
def test_pr_plan_names_secret_changes_in_every_format(
    atlas: Atlas, repo: GitRepo, example_keys: dict[str, Path], tmp_path: Path, with_key: bool
) -> None:
    leaks = LeakCheck(known(example_keys))
    key = ["--key-file", example_keys["production"]] if with_key else []
    common = [
        *pr_plan(repo, "change"),
        "--scope",
        "user",
        "--root",
        tmp_path / "none",
        *key,
    ]
    text = atlas(*common, "-o", "text")
    assert text.code == 2, text.err
    for name, what in EXPECTED:
        assert f"  secret {name} {what}" in text.out
    assert "(secrets; values not shown)" in text.out
    md = atlas(*common, "-o", "markdown")
    assert md.code == 2
    assert "**Secrets** (values never shown):" in md.out
    for name, what in EXPECTED:
        assert f"- `{name}` {what} (`" in md.out
    js = atlas(*common, "-o", "json")
    assert js.code == 2
    plan = json.loads(js.out)["environments"]["production"]
    env_files = [f for f in plan["files"] if f["path"].endswith(".env")]
    assert env_files and all(f["sensitive"] and f["diff"] is None for f in env_files)
    found = sorted((s["name"], s["change"]) for f in env_files for s in f["secrets"])
    assert found == EXPECTED
    env_writes = [a for a in plan["actions"] if a["target"].endswith(".env")]
    assert all(a["sha256"] is None for a in env_writes)
    assert any("secret smtp_password changed" in a["reason"] for a in env_writes)
    for result, name in ((text, "text"), (md, "markdown"), (js, "json")):
        assert_no_env_diff(result.out)
        leaks.text(f"atlas plan -o {name}", result.output)
    leaks.assert_clean()


def digests_of(repo: GitRepo, ref: str, key: Path, cache: Path) -> dict[str, str]:
    """The keyed digests a host computes for the secrets of ``ref``."""
    layout = host_layout("user", cache / "host", os.environ)
    ctx = RenderContext(layout, HostFacts.current(), None)
    co = pipeline.fetch(pipeline.Target(str(repo.path), ref, ".", "production"), cache)
    prepared = pipeline.prepare(co, "production", ctx, KeyRingSecrets(load_key_file(key)))
    return {n: v.digest for n, v in prepared.desired.secrets.items()}


def test_rotation_changes_no_keyed_digest(
    atlas: Atlas, repo: GitRepo, example_keys: dict[str, Path], tmp_path: Path
) -> None:
    key = example_keys["production"]
    before = digests_of(repo, "main", key, tmp_path / "c1")
    repo.branch("rotate")
    assert (
        atlas("secrets", "rotate", "production", "--repo", repo.path, "--key-file", key).code == 0
    )
    repo.commit("rotate the production key")
    common = [
        *pr_plan(repo, "rotate"),
        "--scope",
        "user",
        "--root",
        tmp_path / "none",
    ]
    keyed = atlas(*common, "--key-file", key, "-o", "json")
    assert keyed.code == 0, keyed.output  # same values: nothing for a host to do
    assert json.loads(keyed.out)["environments"]["production"]["actions"] == []
    # without the key only the tokens can be compared, and each one changed
    sealed = atlas(*common, "-o", "text")
    assert sealed.code == 2
    for name in ("backup_key", "git_webhook_secret", "pager_webhook_url", "smtp_password"):
        assert f"secret {name} changed" in sealed.out
    # once the old key is dropped the digests are still the same
    assert (
        atlas("secrets", "drop-key", "production", "--repo", repo.path, "--key-file", key).code == 0
    )
    assert len(load_key_file(key).keys) == 1
    assert digests_of(repo, "rotate", key, tmp_path / "c2") == before
    # and they are keyed: another key gives other digests of the same values
    other = load_key_file(example_keys["staging"])
    values = example_values({"production": _pristine_key(tmp_path)})["production"]
    assert all(before[n] != other.digest(n, values[n]) for n in before)


def _pristine_key(tmp_path: Path) -> Path:
    from tests.support.examples import FIXTURE_KEYS

    dest = tmp_path / "pristine-production.key"
    dest.write_bytes((FIXTURE_KEYS / "production.key").read_bytes())
    os.chmod(dest, 0o600)
    return dest


def _apply_by_hand(repo: GitRepo, ref: str, key: Path, root: Path, cache: Path) -> None:
    """Write what ``ref`` renders into ``root`` and record it, as an apply would."""
    layout = host_layout("user", root, os.environ)
    target = pipeline.Target(str(repo.path), ref, ".", "production")
    ctx = RenderContext(layout, HostFacts.current(), target.invocation)
    co = pipeline.fetch(target, cache)
    prepared = pipeline.prepare(co, "production", ctx, KeyRingSecrets(load_key_file(key)))
    for f in prepared.rendered.files:
        path = layout.on_disk(f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.content)
        os.chmod(path, f.mode)
    store = StateStore(state_path(layout.on_disk(layout.reconciler_dir)))
    try:
        for entry in Inventory.of(prepared.rendered, store.host_key).files.values():
            store.record_file(entry)
    finally:
        store.close()


def test_reconcile_dry_run_names_secret_changes_in_every_format(
    atlas: Atlas, repo: GitRepo, example_keys: dict[str, Path], tmp_path: Path
) -> None:
    key = example_keys["production"]
    root = tmp_path / "host"
    _apply_by_hand(repo, "main", key, root, tmp_path / "cache")
    env_files = sorted(root.rglob("*.env"))
    assert env_files
    values = known(example_keys)
    leaks = LeakCheck(values)
    for f in env_files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    # positive control: the env files do hold the values, and the checker sees them
    assert LeakCheck(values).tree(root.joinpath(*env_files[0].relative_to(root).parts[:-1]))
    before = host_files(root)
    common = [*dry_run(repo, root), "--key-file", key]
    for output in ("text", "json", "markdown"):
        r = atlas(*common, "-o", output)
        assert r.code == 2, r.err
        assert_no_env_diff(r.out)
        leaks.text(f"atlas reconcile --dry-run -o {output}", r.output)
        if output == "text":
            for name, what in EXPECTED:
                assert f"  secret {name} {what}" in r.out
        elif output == "markdown":
            for name, what in EXPECTED:
                assert f"- `{name}` {what} (`" in r.out
        else:
            plan = json.loads(r.out)
            found = sorted((s["name"], s["change"]) for f in plan["files"] for s in f["secrets"])
            assert found == EXPECTED
    assert host_files(root) == before, "a dry run must not change the host"
    # every other file on the host — units, JSON configs, the state DB — holds no value
    leaks.tree(root, allow=env_files)
    leaks.sqlite(next(root.rglob("state.db")))
    leaks.assert_clean()


def test_reconcile_with_a_bad_key_names_the_secret_and_changes_nothing(
    atlas: Atlas, repo: GitRepo, example_keys: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "host"
    _apply_by_hand(repo, "main", example_keys["production"], root, tmp_path / "cache")
    before = host_files(root)
    leaks = LeakCheck(known(example_keys))
    common = dry_run(repo, root)
    missing = atlas(*common, "--key-file", tmp_path / "absent.key")
    assert missing.code == 1
    assert "environment 'production': cannot decrypt secret" in missing.err
    assert "does not exist" in missing.err
    wrong = atlas(*common, "--key-file", example_keys["staging"])
    assert wrong.code == 1
    assert "environment 'production': secret " in wrong.err and "wrong" in wrong.err
    assert (
        "environments/production/secrets.yaml:9: Secrets/production-secrets: environment "
        "'production': secret 'chat_webhook_url': cannot be decrypted"
    ) in wrong.err
    os.chmod(example_keys["production"], 0o644)
    loose = atlas(*common, "--key-file", example_keys["production"])
    assert loose.code == 1 and "readable by others" in loose.err
    assert "environment 'production': cannot decrypt secret" in loose.err
    for r in (missing, wrong, loose):
        assert r.out == "" and "Traceback" not in r.err
        leaks.text("reconcile error", r.output)
    leaks.assert_clean()
    assert host_files(root) == before
