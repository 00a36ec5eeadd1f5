"""``atlas secrets``: every command end to end on a copy of the example repository, and
every error path: exit 1, names the environment and the secret, changes nothing,
shows no value."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.secrets.keys import load_key_file
from tests.support.cli import Atlas, Result, dry_run_args
from tests.support.examples import EXAMPLE, FAKE_EDITOR, example_values
from tests.support.leakcheck import LeakCheck

NEW_VALUE = "smtp-password-NEW-0b9f3c2a"
ANOTHER = "pager-url-https-7d1e99-example"


def snapshot(*roots: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``roots`` with its bytes and mode: to show nothing changed."""
    out = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in paths:
            out[str(p)] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def tokens(repo: Path, env: str) -> dict[str, str]:
    doc = yaml.safe_load((repo / "environments" / env / "secrets.yaml").read_text())
    return dict(doc["spec"]["data"])


def write_tokens(repo: Path, env: str, changes: dict[str, str]) -> None:
    """Hand-edit tokens in the Secrets file (as a careless copy-paste would)."""
    path = repo / "environments" / env / "secrets.yaml"
    text = path.read_text()
    for name, token in changes.items():
        old = tokens(repo, env)[name]
        text = text.replace(f"{name}: {old}", f"{name}: {token}")
    path.write_text(text)


def set_secret(atlas: Atlas, repo: Path, key: Path, name: str, value: bytes) -> Result:
    """``atlas secrets set production NAME`` with ``value`` on stdin."""
    return atlas(
        "secrets", "set", "production", name, "--repo", repo, "--key-file", key, stdin=value
    )


@pytest.fixture
def prod(example_repo: Path, example_keys: dict[str, Path]) -> tuple[Path, Path]:
    return example_repo, example_keys["production"]


def test_set_then_get_keeps_comments_and_order(atlas: Atlas, prod: tuple[Path, Path]) -> None:
    repo, key = prod
    path = repo / "environments/production/secrets.yaml"
    before = path.read_text()
    r = set_secret(atlas, repo, key, "smtp_password", NEW_VALUE.encode() + b"\n")
    assert r.code == 0, r.err
    assert "secret smtp_password changed in environments/production/secrets.yaml" in r.out
    after = path.read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1 and changed[0][0].startswith("    smtp_password: gAAAA")
    assert after.startswith("# Secrets of production: each value encrypted on its own.")
    r = atlas("secrets", "get", "production", "smtp_password", "--repo", repo, "--key-file", key)
    assert (r.code, r.out) == (0, NEW_VALUE + "\n")
    r = atlas(
        "secrets", "get", "production", "smtp_password", "-n", "--repo", repo, "--key-file", key
    )
    assert r.out == NEW_VALUE
    # the same value again: nothing rewritten
    r = set_secret(atlas, repo, key, "smtp_password", NEW_VALUE.encode())
    assert "unchanged" in r.out and path.read_text() == after


def test_a_new_name_goes_in_sorted_place(atlas: Atlas, prod: tuple[Path, Path]) -> None:
    repo, key = prod
    r = set_secret(atlas, repo, key, "chat_token", ANOTHER.encode())
    assert r.code == 0 and "secret chat_token added" in r.out
    assert list(tokens(repo, "production")) == [
        "backup_key",
        "chat_token",
        "git_webhook_secret",
        "pager_webhook_url",
        "smtp_password",
    ]


def test_set_never_takes_a_value_from_the_command_line(
    atlas: Atlas, prod: tuple[Path, Path]
) -> None:
    repo, key = prod
    before = snapshot(repo, key)
    for argv in (
        ["smtp_password", NEW_VALUE],
        ["smtp_password", "--value", NEW_VALUE],
        ["smtp_password", f"--value={NEW_VALUE}"],
    ):
        r = atlas("secrets", "set", "production", *argv, "--repo", repo, "--key-file", key)
        assert r.code == 1
        assert "never taken from the command line" in r.err
        assert NEW_VALUE not in r.output
    assert snapshot(repo, key) == before


def test_set_creates_the_secrets_document_of_an_environment_without_one(
    atlas: Atlas, example_repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "host"
    host = ["--scope", "user", "--root", root]
    r = atlas("secrets", "keygen", "--env", "development", "--repo", example_repo, *host)
    assert r.code == 0, r.err
    keyfile = next(root.rglob("development.key"))
    assert keyfile.relative_to(root).as_posix().endswith(".config/atlas/keys/development.key")
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyfile.parent.stat().st_mode) == 0o700
    r = atlas(
        "secrets",
        "set",
        "development",
        "smtp_password",
        "--repo",
        example_repo,
        *host,
        stdin=NEW_VALUE.encode(),
    )
    assert r.code == 0, r.err
    env_text = (example_repo / "environments/development/environment.yaml").read_text()
    assert "  logLevel: debug\n  secrets: development-secrets\n" in env_text
    assert env_text.startswith("# Development: runs offline")
    assert list(tokens(example_repo, "development")) == ["smtp_password"]
    assert atlas("validate", example_repo).code == 0
    r = atlas("secrets", "get", "development", "smtp_password", "--repo", example_repo, *host)
    assert r.out == NEW_VALUE + "\n"


def test_keygen_refuses_to_replace_a_key(atlas: Atlas, tmp_path: Path, example_repo: Path) -> None:
    key = tmp_path / "k" / "staging.key"
    assert atlas("secrets", "keygen", "--env", "staging", "--key-file", key).code == 0
    first = key.read_bytes()
    r = atlas("secrets", "keygen", "--env", "staging", "--key-file", key)
    assert r.code == 1 and "already exists" in r.err and "--force" in r.err
    assert key.read_bytes() == first
    r = atlas(
        "secrets",
        "keygen",
        "--env",
        "staging",
        "--key-file",
        key,
        "--force",
        "--repo",
        example_repo,
    )
    assert r.code == 0 and key.read_bytes() != first
    assert "cannot decrypt them" in r.err  # staging already has secrets under another key
    assert first.decode().splitlines()[-1] not in r.output + key.read_text()


def test_keygen_follows_the_environment_variable(
    atlas: Atlas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "from-env.key"
    monkeypatch.setenv("ATLAS_SECRETS_KEY_FILE", str(key))
    assert atlas("secrets", "keygen", "--env", "staging", "-o", "json").code == 0
    assert load_key_file(key).keys


def test_list_needs_no_key_and_shows_no_values(
    atlas: Atlas, prod: tuple[Path, Path], example_keys: dict[str, Path]
) -> None:
    repo, _ = prod
    r = atlas("secrets", "list", "production", "--repo", repo)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "SET", "FINGERPRINT"]
    assert [ln.split()[0] for ln in lines[1:]] == sorted(tokens(repo, "production"))
    assert "UTC" in lines[1]
    j = atlas("secrets", "list", "production", "--repo", repo, "-o", "json")
    import json

    data = json.loads(j.out)
    assert data["document"] == "Secrets/production-secrets"
    assert all(s["valid"] and s["setAt"].endswith("Z") for s in data["secrets"])
    leaks = LeakCheck(example_values(example_keys)["production"])
    leaks.text("list", r.output + j.output)
    leaks.assert_clean()
    r = atlas("secrets", "list", "development", "--repo", repo)
    assert r.out == "environment development has no secrets\n"


def test_rm_refuses_a_secret_in_use(atlas: Atlas, prod: tuple[Path, Path]) -> None:
    repo, key = prod
    before = snapshot(repo)
    r = atlas("secrets", "rm", "production", "smtp_password", "--repo", repo)
    assert r.code == 1 and "used by AlertChannel/ops" in r.err
    assert snapshot(repo) == before
    set_secret(atlas, repo, key, "spare_token", ANOTHER.encode())
    r = atlas("secrets", "rm", "production", "spare_token", "--repo", repo)
    assert r.code == 0 and "spare_token" not in tokens(repo, "production")


def test_commands_find_the_repository_from_the_current_folder(
    atlas: Atlas, prod: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, _ = prod
    monkeypatch.chdir(repo / "environments" / "production")
    assert atlas("secrets", "list", "production").code == 0
    monkeypatch.chdir(tmp_path)
    r = atlas("secrets", "list", "production")
    assert r.code == 1 and "not inside a manifests repository" in r.err and "--repo" in r.err


# --------------------------------------------------------------------------- rotation


def test_rotate_keeps_every_value_then_the_old_key_can_go(
    atlas: Atlas, prod: tuple[Path, Path], example_keys: dict[str, Path]
) -> None:
    repo, key = prod
    values = example_values(example_keys)["production"]
    old_key = load_key_file(key).keys[0]
    listed = atlas("secrets", "list", "production", "--repo", repo, "-o", "json").out
    r = atlas("secrets", "rotate", "production", "--repo", repo, "--key-file", key)
    assert r.code == 0, r.err
    assert "4 secret(s) re-encrypted" in r.out and "drop-key production" in r.out
    ring = load_key_file(key)
    assert len(ring.keys) == 2 and ring.keys[1] == old_key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for name, value in values.items():
        got = atlas("secrets", "get", "production", name, "--repo", repo, "--key-file", key)
        assert got.out == value + "\n"
    # the times values were set are kept: only fingerprints change
    import json

    before = {s["name"]: s for s in json.loads(listed)["secrets"]}
    after = {
        s["name"]: s
        for s in json.loads(
            atlas("secrets", "list", "production", "--repo", repo, "-o", "json").out
        )["secrets"]
    }
    assert {n: s["setAt"] for n, s in after.items()} == {n: s["setAt"] for n, s in before.items()}
    assert all(after[n]["fingerprint"] != before[n]["fingerprint"] for n in after)
    # the old key alone no longer reads the rotated file
    only_old = key.parent / "old.key"
    only_old.write_bytes(old_key + b"\n")
    os.chmod(only_old, 0o600)
    r = atlas(
        "secrets", "get", "production", "smtp_password", "--repo", repo, "--key-file", only_old
    )
    assert r.code == 1 and "wrong" in r.err
    r = atlas("secrets", "drop-key", "production", "--repo", repo, "--key-file", key)
    assert r.code == 0 and "dropped 1 older key" in r.out
    assert len(load_key_file(key).keys) == 1
    for name, value in values.items():
        got = atlas("secrets", "get", "production", name, "--repo", repo, "--key-file", key)
        assert got.out == value + "\n"


def test_rotate_drop_old_in_one_step(atlas: Atlas, prod: tuple[Path, Path]) -> None:
    repo, key = prod
    r = atlas("secrets", "rotate", "production", "--drop-old", "--repo", repo, "--key-file", key)
    assert r.code == 0, r.err
    assert len(load_key_file(key).keys) == 1
    got = atlas("secrets", "get", "production", "backup_key", "--repo", repo, "--key-file", key)
    assert got.code == 0


def test_drop_key_refuses_while_a_value_needs_the_old_key(
    atlas: Atlas, prod: tuple[Path, Path]
) -> None:
    repo, key = prod
    old = tokens(repo, "production")
    assert atlas("secrets", "rotate", "production", "--repo", repo, "--key-file", key).code == 0
    write_tokens(repo, "production", {"backup_key": old["backup_key"]})  # a stale merge
    before = snapshot(repo, key)
    r = atlas("secrets", "drop-key", "production", "--repo", repo, "--key-file", key)
    assert r.code == 1
    assert (
        "environment 'production': secret 'backup_key': still encrypted with an older key" in r.err
    )
    assert snapshot(repo, key) == before


# --------------------------------------------------------------------------- edit


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = FAKE_EDITOR
    log = tmp_path / "editor.log"
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR_LOG", str(log))
    monkeypatch.setenv("NEW_VALUE", NEW_VALUE)
    return log


def edited_file(log: Path) -> tuple[Path, str, str]:
    path, mode, dir_mode = log.read_text().splitlines()
    return Path(path), mode, dir_mode


def test_edit_re_encrypts_changes_and_removes_its_temp_file(
    atlas: Atlas,
    prod: tuple[Path, Path],
    editor: Path,
    monkeypatch: pytest.MonkeyPatch,
    example_keys: dict[str, Path],
) -> None:
    repo, key = prod
    old = tokens(repo, "production")
    monkeypatch.setenv("EDITOR_ACTION", "change")
    r = atlas("secrets", "edit", "production", "--repo", repo, "--key-file", key)
    assert r.code == 0, r.err
    assert r.out.splitlines()[:3] == [
        "secret chat_token added",
        "secret pager_webhook_url removed",
        "secret smtp_password changed",
    ]
    assert "used by AlertChannel/pager" in r.err  # removing a secret in use is warned about
    path, mode, dir_mode = edited_file(editor)
    assert (mode, dir_mode) == ("0o600", "0o700")
    assert not path.exists() and not path.parent.exists()
    new = tokens(repo, "production")
    assert new["backup_key"] == old["backup_key"], "unchanged values keep their tokens"
    assert "pager_webhook_url" not in new
    get = atlas("secrets", "get", "production", "chat_token", "--repo", repo, "--key-file", key)
    assert get.out == "first line of a token\nsecond line of a token\n\n"
    get = atlas("secrets", "get", "production", "smtp_password", "--repo", repo, "--key-file", key)
    assert get.out == NEW_VALUE + "\n"
    leaks = LeakCheck({**example_values(example_keys)["production"], "new": NEW_VALUE})
    leaks.text("edit output", r.output)
    leaks.assert_clean()


@pytest.mark.parametrize(
    ("action", "message"),
    [("fail", "the editor exited with status 3"), ("garbage", "not valid YAML (line")],
)
def test_a_failed_edit_changes_nothing_and_removes_its_temp_file(
    atlas: Atlas,
    prod: tuple[Path, Path],
    editor: Path,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
    message: str,
    example_keys: dict[str, Path],
) -> None:
    repo, key = prod
    before = snapshot(repo, key)
    monkeypatch.setenv("EDITOR_ACTION", action)
    r = atlas("secrets", "edit", "production", "--repo", repo, "--key-file", key)
    assert r.code == 1
    assert message in r.err and "nothing was changed" in r.err
    path, _, _ = edited_file(editor)
    assert not path.exists() and not path.parent.exists()
    assert snapshot(repo, key) == before
    leaks = LeakCheck({**example_values(example_keys)["production"], "new": NEW_VALUE})
    leaks.text("edit error", r.output)
    leaks.assert_clean()


def test_an_edit_without_changes_writes_nothing(
    atlas: Atlas, prod: tuple[Path, Path], editor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, key = prod
    before = snapshot(repo, key)
    monkeypatch.setenv("EDITOR_ACTION", "same")
    r = atlas("secrets", "edit", "production", "--repo", repo, "--key-file", key)
    assert (r.code, r.out) == (0, "no changes to the secrets of production\n")
    assert snapshot(repo, key) == before


def test_an_editor_that_cannot_start_changes_nothing(
    atlas: Atlas, prod: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, key = prod
    before = snapshot(repo, key)
    monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    r = atlas("secrets", "edit", "production", "--repo", repo, "--key-file", key)
    assert r.code == 1 and "cannot run the editor" in r.err
    assert snapshot(repo, key) == before
    assert list((tmp_path / "run").iterdir()) == [], "the private temp folder is gone"


# --------------------------------------------------------------------------- errors


def _bad_token(repo: Path, how: str) -> None:
    t = tokens(repo, "production")
    if how == "truncated":
        write_tokens(repo, "production", {"smtp_password": t["smtp_password"][:-20]})
    elif how == "tampered":
        tok = t["smtp_password"]
        flipped = tok[:60] + ("A" if tok[60] != "A" else "B") + tok[61:]
        write_tokens(repo, "production", {"smtp_password": flipped})
    elif how == "swapped":
        write_tokens(repo, "production", {"smtp_password": t["backup_key"]})


ERROR_CASES = {
    # case: (setup, argv after the command, expected message)
    "missing key file": (
        None,
        ["get", "production", "smtp_password"],
        "environment 'production': secret 'smtp_password': no key file",
    ),
    "insecure key file": (
        "chmod",
        ["get", "production", "smtp_password"],
        "environment 'production': secret 'smtp_password': key file",
    ),
    "wrong key": (
        "wrong",
        ["get", "production", "smtp_password"],
        "environment 'production': secret 'smtp_password': cannot be decrypted with the keys",
    ),
    "truncated token": (
        "truncated",
        ["get", "production", "smtp_password"],
        "environment 'production': secret 'smtp_password': the encrypted value is corrupted "
        "or truncated",
    ),
    "tampered token": (
        "tampered",
        ["get", "production", "smtp_password"],
        "environment 'production': secret 'smtp_password': cannot be decrypted",
    ),
    "swapped value": (
        "swapped",
        ["get", "production", "smtp_password"],
        "environment 'production': secret 'smtp_password': holds the value encrypted for "
        "secret 'backup_key'",
    ),
    "unknown secret": (None, ["get", "production", "nope_secret"], "no secret named 'nope_secret'"),
    "unknown environment": (None, ["list", "qa"], "unknown environment 'qa'"),
    "rotate with a broken token": (
        "truncated",
        ["rotate", "production"],
        "secret 'smtp_password': the encrypted value",
    ),
    "edit with a swapped token": (
        "swapped",
        ["edit", "production"],
        "secret 'smtp_password': holds the value",
    ),
    "set with the wrong key": (
        "wrong",
        ["set", "production", "smtp_password"],
        "environment 'production': the keys in",
    ),
    "bad secret name": (None, ["set", "production", "bad-name"], "'bad-name' is not a secret name"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_name_the_secret_change_nothing_and_leak_nothing(
    atlas: Atlas,
    prod: tuple[Path, Path],
    example_keys: dict[str, Path],
    tmp_path: Path,
    case: str,
) -> None:
    repo, key = prod
    setup, argv, message = ERROR_CASES[case]
    leaks = LeakCheck({**example_values(example_keys)["production"], "new": NEW_VALUE})
    key_arg = key
    if setup == "chmod":
        os.chmod(key, 0o640)
    elif setup == "wrong":
        key_arg = example_keys["staging"]
    elif setup is not None:
        _bad_token(repo, setup)
    if case == "missing key file":
        key_arg = tmp_path / "absent.key"
    before = snapshot(repo, key, example_keys["staging"])
    r = atlas("secrets", *argv, "--repo", repo, "--key-file", key_arg, stdin=NEW_VALUE.encode())
    assert r.code == 1, r.output
    assert message in r.err, r.err
    assert r.out == ""
    assert "Traceback" not in r.err
    assert snapshot(repo, key, example_keys["staging"]) == before
    for line in key.read_text().splitlines() + example_keys["staging"].read_text().splitlines():
        if not line.startswith("#"):
            leaks.secrets = {**leaks.secrets, f"key {line[:4]}": line}  # keys must not show either
    leaks.text(case, r.output)
    leaks.assert_clean()


def test_a_reference_to_a_secret_that_does_not_exist(
    atlas: Atlas, prod: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, key = prod
    alerting = repo / "environments/production/alerting.yaml"
    alerting.write_text(
        alerting.read_text().replace(
            "passwordSecret: smtp_password", "passwordSecret: smtp_pasword"
        )
    )
    r = atlas("validate", repo, "--env", "production")
    assert r.code == 1
    assert (
        "environments/production/alerting.yaml:14: AlertChannel/ops: spec.email.passwordSecret: "
        "no secret named 'smtp_pasword' in environment 'production'"
    ) in r.out
    root = tmp_path / "root"
    root.mkdir()
    r = atlas(*dry_run_args(repo, "production", root, "--key-file", key))
    assert r.code == 1 and "no secret named 'smtp_pasword' in environment 'production'" in r.err
    assert list(root.iterdir()) == []


def test_the_example_keys_are_not_in_the_repository() -> None:
    for env in ("staging", "production"):
        key = (EXAMPLE.parent / "tests/fixtures/keys" / f"{env}.key").read_text().splitlines()[-1]
        for path in EXAMPLE.rglob("*"):
            if path.is_file():
                assert key not in path.read_text(errors="replace")


def test_a_key_file_copied_with_cp_keeps_being_refused(
    atlas: Atlas, prod: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, key = prod
    copy = tmp_path / "copy.key"
    shutil.copy(key, copy)
    os.chmod(copy, 0o644)
    r = atlas("secrets", "rotate", "production", "--repo", repo, "--key-file", copy)
    assert r.code == 1 and "readable by others (mode 0644)" in r.err


def _talk(argv: list[str], answers: list[bytes], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``argv`` on a new pseudo-terminal, answering each prompt; (exit code, all output)."""
    import pty
    import select
    import signal
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty
        os.execve(argv[0], argv, env)
    seen = b""
    answered = 0  # output up to here has been answered
    pending = list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            # answer a prompt once it is printed (getpass has turned echo off by then)
            if pending and seen[answered:].rstrip().endswith(b":"):
                os.write(fd, pending.pop(0))
                answered = len(seen)
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


@pytest.mark.parametrize("second", [NEW_VALUE, "a-different-value"])
def test_set_reads_a_hidden_prompt_on_a_terminal(
    prod: tuple[Path, Path], second: str, atlas: Atlas
) -> None:
    repo, key = prod
    before = tokens(repo, "production")["smtp_password"]
    argv = [
        sys.executable,
        "-m",
        "atlas",
        "secrets",
        "set",
        "production",
        "smtp_password",
        "--repo",
        str(repo),
        "--key-file",
        str(key),
    ]
    env = {k: v for k, v in os.environ.items() if k != "ATLAS_SECRETS_KEY_FILE"}
    code, output = _talk(argv, [NEW_VALUE.encode() + b"\n", second.encode() + b"\n"], env)
    assert b"Value of smtp_password for production (hidden):" in output
    assert NEW_VALUE.encode() not in output and second.encode() not in output, "echo is off"
    if second == NEW_VALUE:
        assert code == 0, output
        got = atlas(
            "secrets", "get", "production", "smtp_password", "--repo", repo, "--key-file", key
        )
        assert got.out == NEW_VALUE + "\n"
    else:
        assert code == 1 and b"the two values differ; nothing was changed" in output
        assert tokens(repo, "production")["smtp_password"] == before
