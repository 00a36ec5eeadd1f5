"""The PID-1 systemd container (tests/support/pid1.py), booted once per session with
Atlas installed from its wheel, and a system-scope site on it per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pid1 import ContainerFailed, Pid1Host, why_unavailable
from tests.support.systemsite import SystemSite

SHARE = "/srv/share"
WHEELS = "/srv/wheels"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"system-scope tests must run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pid1_share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of this host that the container sees as ``SHARE``."""
    return tmp_path_factory.mktemp("pid1-share")


@pytest.fixture(scope="session")
def pid1(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, pid1_share: Path
) -> Iterator[Pid1Host]:
    """A booted container with Atlas in /opt/atlas (``/usr/bin/python3``)."""
    reason = why_unavailable()
    if reason:
        _unavailable(reason)
    host = Pid1Host(
        bind={pid1_share: SHARE},
        bind_ro={wheelhouse: WHEELS},
        console=tmp_path_factory.mktemp("pid1-console") / "console.log",
    )
    try:
        host.boot()
        host.install_atlas(WHEELS)
    except (ContainerFailed, OSError) as exc:
        host.poweroff()
        _unavailable(f"cannot boot a systemd container: {exc}")
    try:
        yield host
    finally:
        host.poweroff()


@pytest.fixture
def system_site(
    pid1: Pid1Host, pid1_share: Path, request: pytest.FixtureRequest
) -> Iterator[SystemSite]:
    """A fresh system-scope site: nothing of Atlas on the container before or after."""
    pid1.reset()
    site = SystemSite(pid1, pid1_share, SHARE, request.node.name[:60])
    try:
        yield site
    finally:
        pid1.reset()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The atlas wheel and its dependencies' wheels, built once per session."""
    from tests.support.wheels import build_wheelhouse

    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))
