"""Shared fixtures. Helpers live in tests/support/; tests in unit/ (in-process, no
servers or processes), integration/ (real git, HTTP servers on 127.0.0.1, processes)
and system/ (a real systemd manager, a real Prometheus)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from atlas.usermanager import ManagerUnavailable, PrivateManager, why_unavailable
from seams.testing import FakeClock
from tests.support.examples import EXAMPLE, FIXTURE_KEYS


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


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"real-systemd tests must run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture
def systemd_user() -> Iterator[PrivateManager]:
    """A private systemd user manager, started for the test and stopped after it."""
    with started(PrivateManager) as manager:
        yield manager


@contextlib.contextmanager
def started(make: Callable[[], PrivateManager]) -> Iterator[PrivateManager]:
    """A manager from ``make``, booted (skipped with the reason where one cannot be; a
    failure under CI=true), and stopped and removed after."""
    reason = why_unavailable()
    if reason:
        _unavailable(reason)
    manager = make()
    try:
        manager.start()
    except ManagerUnavailable as exc:
        manager.cleanup()
        _unavailable(str(exc))
    try:
        yield manager
    finally:
        manager.cleanup()


@pytest.fixture
def remote(tmp_path: Path) -> tuple[Path, Path]:
    """A bare 'origin' repository of the example manifests and a clone that pushes to it."""
    from tests.support.git import bare_origin, example_repo

    work = example_repo(tmp_path / "work")
    return bare_origin(tmp_path / "origin.git", work), work


@pytest.fixture
def ops_repo(tmp_path: Path) -> Path:
    """A git repository (one commit on main) of the example manifests."""
    from tests.support.git import example_repo

    return example_repo(tmp_path / "ops")


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ATLAS_SECRETS_KEY_FILE from the caller's environment."""
    monkeypatch.delenv("ATLAS_SECRETS_KEY_FILE", raising=False)


@pytest.fixture
def atlas(no_key_env: None):  # type: ignore[no-untyped-def]
    """Runs ``atlas`` in-process: ``atlas("secrets", "list", "staging", stdin=b"")``."""
    from tests.support.cli import Atlas

    return Atlas()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    from tests.support.monitoring import TestServer

    s = TestServer()
    yield s
    s.close()


@pytest.fixture
def server2():  # type: ignore[no-untyped-def]
    from tests.support.monitoring import TestServer

    s = TestServer()
    yield s
    s.close()


@pytest.fixture
def hanging():  # type: ignore[no-untyped-def]
    from tests.support.monitoring import HangingServer

    s = HangingServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def smtp_cert(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.support.mailserver import make_cert

    return make_cert(tmp_path_factory.mktemp("smtp-cert"))
