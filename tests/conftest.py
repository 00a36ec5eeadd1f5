"""Shared fixtures: copies of the example manifests, example keys, small helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "manifests"
FIXTURE_KEYS = PROJECT / "tests" / "fixtures" / "keys"


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A private copy of manifests/ that a test may edit."""
    dest = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, dest)
    return dest


@pytest.fixture
def example_keys(tmp_path: Path) -> dict[str, Path]:
    """The example keys of staging and production, copied with mode 0600."""
    out = {}
    for env in ("staging", "production"):
        dest = tmp_path / "keys" / f"{env}.key"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURE_KEYS / f"{env}.key", dest)
        os.chmod(dest, 0o600)
        out[env] = dest
    return out


@pytest.fixture
def systemd_user():
    """A private systemd user manager, started for the test and stopped after it."""
    from tests.sysd import ManagerUnavailable, PrivateManager, why_unavailable

    reason = why_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"real-systemd tests must run under CI=true: {reason}")
        pytest.skip(reason)
    manager = PrivateManager()
    try:
        manager.start()
    except ManagerUnavailable as exc:
        manager.cleanup()
        if os.environ.get("CI") == "true":
            pytest.fail(f"real-systemd tests must run under CI=true: {exc}")
        pytest.skip(str(exc))
    try:
        yield manager
    finally:
        manager.cleanup()


@pytest.fixture
def remote(tmp_path: Path) -> tuple[Path, Path]:
    """A bare 'origin' repository of the example manifests and a clone that pushes to it."""
    import subprocess

    from tests.gitutil import git

    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "initial")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return bare, work


def example_values(keys: dict[str, Path]) -> dict[str, dict[str, str]]:
    """The decrypted values of the example manifests' secrets: environment → name → value."""
    import yaml

    from reconciler.secrets.keys import load_key_file

    out: dict[str, dict[str, str]] = {}
    for env, key in keys.items():
        ring = load_key_file(key)
        doc = yaml.safe_load((EXAMPLE / "environments" / env / "secrets.yaml").read_text())
        out[env] = {n: ring.decrypt(env, n, t).reveal() for n, t in doc["spec"]["data"].items()}
    return out


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ATLAS_SECRETS_KEY_FILE from the caller's environment."""
    monkeypatch.delenv("ATLAS_SECRETS_KEY_FILE", raising=False)


@pytest.fixture
def atlas(no_key_env: None):
    """Runs ``atlas`` in-process: ``atlas("secrets", "list", "staging", stdin=b"")``."""
    from tests.cli import Atlas

    return Atlas()


@pytest.fixture
def ops_repo(tmp_path: Path) -> Path:
    """A git repository (one commit on main) of the example manifests."""
    from tests.gitutil import git

    repo = tmp_path / "ops"
    shutil.copytree(EXAMPLE, repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "initial")
    return repo
