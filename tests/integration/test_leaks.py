"""The whole life of an environment's secrets in one git repository — set, edited,
rotated, keys dropped, removed, errors made — and not one known value in any output:
command output and errors, plans, git history (every object) and `git log -p` through
the textconv driver, rendered unit and JSON files. Rendered env files are 0600."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import pipeline
from reconciler.host.paths import host_layout
from reconciler.render.desired import HostFacts, RenderContext
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets
from tests.support.cli import Atlas
from tests.support.examples import FAKE_EDITOR, FIXTURE_KEYS, example_values
from tests.support.git import GitRepo
from tests.support.leakcheck import LeakCheck

NEW = {
    "smtp_password": "lifecycle-smtp-3e8b1f0a",
    "chat_token": "lifecycle-chat-token-77c2d9",
    "staging_smtp": "lifecycle-staging-smtp-5d0e",
    "dev_token": "lifecycle-development-c4a1",
    "pager": "https://pager.invalid/lifecycle-91b2",
}


Lifecycle = tuple[GitRepo, Atlas, dict[str, str], dict[str, Path]]


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lifecycle]:
    """One repository taken through every secrets command (built once for this module)."""
    tmp_path = tmp_path_factory.mktemp("lifecycle")
    example_keys = copy_keys(tmp_path / "keys")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("ATLAS_SECRETS_KEY_FILE", raising=False)
        yield _live(tmp_path, example_keys, Atlas(), monkeypatch)


def copy_keys(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    out = {}
    for env in ("staging", "production"):
        out[env] = folder / f"{env}.key"
        shutil.copy(FIXTURE_KEYS / f"{env}.key", out[env])
        os.chmod(out[env], 0o600)
    return out


def _live(
    tmp_path: Path, example_keys: dict[str, Path], atlas: Atlas, monkeypatch: pytest.MonkeyPatch
) -> Lifecycle:
    values = {
        f"{env} {n}": v for env, d in example_values(example_keys).items() for n, v in d.items()
    }
    values.update({f"new {n}": v for n, v in NEW.items()})
    repo = GitRepo(tmp_path / "repo")
    (repo.path / ".gitattributes").write_text("environments/*/secrets.yaml diff=atlas-secrets\n")
    repo.git("config", "diff.atlas-secrets.textconv", f"{sys.executable} -m atlas secrets textconv")
    repo.commit("show secrets in diffs by name")
    prod = ["--repo", repo.path, "--key-file", example_keys["production"]]
    staging = ["--repo", repo.path, "--key-file", example_keys["staging"]]
    dev = ["--repo", repo.path, "--scope", "user", "--root", tmp_path / "devhost"]

    def ok(*argv: object, stdin: bytes = b"") -> None:
        r = atlas(*argv, stdin=stdin)
        assert r.code == 0, (argv, r.err)

    def fails(*argv: object, stdin: bytes = b"") -> None:
        r = atlas(*argv, stdin=stdin)
        assert r.code == 1 and "Traceback" not in r.err, (argv, r.output)

    ok("secrets", "list", "production", "--repo", repo.path)
    ok("secrets", "list", "staging", "--repo", repo.path, "-o", "json")
    ok("secrets", "set", "production", "smtp_password", *prod, stdin=NEW["smtp_password"].encode())
    ok("secrets", "set", "staging", "smtp_extra", *staging, stdin=NEW["staging_smtp"].encode())
    repo.commit("new SMTP passwords")
    for env, args in (("production", prod), ("staging", staging)):
        for name in example_values(example_keys)[env]:
            ok("secrets", "get", env, name, *args)
    script = FAKE_EDITOR
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.setenv("EDITOR_LOG", str(tmp_path / "editor.log"))
    monkeypatch.setenv("NEW_VALUE", NEW["smtp_password"] + "-edited")
    values["edited smtp"] = NEW["smtp_password"] + "-edited"
    monkeypatch.setenv("EDITOR_ACTION", "same")
    ok("secrets", "edit", "production", *prod)
    monkeypatch.setenv("EDITOR_ACTION", "garbage")
    fails("secrets", "edit", "production", *prod)
    monkeypatch.setenv("EDITOR_ACTION", "fail")
    fails("secrets", "edit", "production", *prod)
    monkeypatch.setenv("EDITOR_ACTION", "change")
    ok("secrets", "edit", "production", *prod)  # removes pager_webhook_url: put it back
    ok("secrets", "set", "production", "pager_webhook_url", *prod, stdin=NEW["pager"].encode())
    repo.commit("edit production secrets")
    ok("secrets", "rotate", "production", *prod)
    ok("secrets", "rotate", "staging", *staging, "-o", "json")
    repo.commit("rotate keys")
    ok("secrets", "drop-key", "production", *prod)
    ok("secrets", "rotate", "staging", "--drop-old", *staging)
    ok("secrets", "rm", "staging", "smtp_extra", "--repo", repo.path)
    repo.commit("drop old keys, remove a secret")
    ok("secrets", "keygen", "--env", "development", *dev)
    ok("secrets", "set", "development", "dev_token", *dev, stdin=NEW["dev_token"].encode())
    repo.commit("development gets secrets")
    # errors, each with a value on stdin that must not come back
    fails(
        "secrets",
        "get",
        "production",
        "smtp_password",
        "--repo",
        repo.path,
        "--key-file",
        example_keys["staging"],
    )
    fails("secrets", "set", "production", "x_token", NEW["chat_token"], *prod)
    fails(
        "secrets",
        "set",
        "production",
        "smtp_password",
        "--repo",
        repo.path,
        "--key-file",
        tmp_path / "absent.key",
        stdin=NEW["chat_token"].encode(),
    )
    fails(
        "secrets",
        "set",
        "staging",
        "smtp_password",
        "--repo",
        repo.path,
        "--key-file",
        example_keys["production"],
        stdin=NEW["chat_token"].encode(),
    )
    fails("secrets", "keygen", "--env", "development", *dev)
    first = repo.git("rev-list", "--max-parents=0", "HEAD").strip()
    for env in ("production", "staging"):
        for fmt in ("text", "json", "markdown"):
            r = atlas(
                "plan",
                "--repo",
                repo.path,
                "--base",
                first,
                "--head",
                "main",
                "--env",
                env,
                "--scope",
                "user",
                "--root",
                tmp_path / "none",
                "-o",
                fmt,
            )
            assert r.code == 2, r.err
    return repo, atlas, values, example_keys


def test_no_output_of_any_command_shows_a_value(
    lifecycle: Lifecycle,
) -> None:
    _, atlas, values, _ = lifecycle
    leaks = LeakCheck(values)
    commands = 0
    for argv, result in atlas.history:
        where = "atlas " + " ".join(argv)
        leaks.text(f"{where} (stderr)", result.err)
        if argv[:2] != ("secrets", "get"):  # printing the value is get's job
            leaks.text(f"{where} (stdout)", result.out)
            commands += 1
    assert commands > 25
    leaks.assert_clean()
    # … and `get` did print the values (so the check above could have failed)
    gets = "".join(r.out for argv, r in atlas.history if argv[:2] == ("secrets", "get"))
    assert values["production backup_key"] in gets and NEW["smtp_password"] in gets


def test_git_history_holds_no_value_and_diffs_show_names(
    lifecycle: Lifecycle,
) -> None:
    repo, _, values, _ = lifecycle
    leaks = LeakCheck(values)
    leaks.git(repo.path)
    log = repo.git("log", "-p", "--all")
    leaks.text("git log -p (textconv)", log)
    leaks.assert_clean()
    assert "+  chat_token: set " in log and "-  smtp_password: set " in log
    assert "-  smtp_extra: set " in log
    assert "Secrets/development-secrets (atlas/v1): encrypted values, shown by fingerprint" in log
    assert "gAAAAA" not in log, "textconv shows fingerprints, not tokens"
    raw = repo.git("log", "-p", "--all", "--no-textconv")
    assert "gAAAAA" in raw  # the driver is what hid the tokens


def test_rendered_files_hold_values_only_in_0600_env_files(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    repo, _, values, example_keys = lifecycle
    for env in ("production", "staging"):
        root = tmp_path / f"host-{env}"
        layout = host_layout("user", root, os.environ)
        target = pipeline.Target(str(repo.path), "main", ".", env)
        ctx = RenderContext(layout, HostFacts.current(), target.invocation)
        co = pipeline.fetch(target, tmp_path / f"cache-{env}")
        keys = KeyRingSecrets(load_key_file(example_keys[env]))
        rendered = pipeline.prepare(co, env, ctx, keys).rendered
        env_files = []
        for f in rendered.files:
            path = layout.on_disk(f.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.content)
            os.chmod(path, f.mode)
            if f.kind == "env":
                env_files.append(path)
                assert f.mode == 0o600 and stat.S_IMODE(path.stat().st_mode) == 0o600
        env_paths = {f.component: f.path for f in rendered.files if f.kind == "env"}
        for f in rendered.files:
            if f.kind == "unit" and f.path.name.endswith(".service"):
                # secrets reach a service only through its EnvironmentFile
                assert f"EnvironmentFile={env_paths[f.component]}\n" in f.content.decode()
        leaks = LeakCheck(values)
        leaks.tree(root, allow=env_files)
        leaks.assert_clean()
        holding = [p for p in env_files if LeakCheck(values).file(p)]
        assert holding, "the env files carry the values the services need"
