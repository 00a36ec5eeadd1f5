"""A system-scope site for the benchmarks: this host's own /usr booted as a PID-1
systemd container (tests/support/pid1.py), Atlas installed there from a wheelhouse
built from this checkout with /usr/bin/python3, and the staging example converged
with its reconciler running as atlas-reconciler.service (needs root)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _site import PROJECT  # noqa: F401 - puts the checkout on sys.path

from tests.support.pid1 import Pid1Host, why_unavailable
from tests.support.systemsite import SystemSite
from tests.support.wheels import build_wheelhouse

SHARE, WHEELS = "/srv/share", "/srv/wheels"


@contextmanager
def system_site() -> Iterator[SystemSite]:
    reason = why_unavailable()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    with tempfile.TemporaryDirectory(prefix="atlas-bench-pid1-") as tmp:
        folder = Path(tmp)
        wheels = build_wheelhouse(folder / "wheels")
        share = folder / "share"
        share.mkdir()
        host = Pid1Host(
            bind={share: SHARE}, bind_ro={wheels: WHEELS}, console=folder / "console.log"
        )
        try:
            host.boot()
            host.install_atlas(WHEELS)
            yield SystemSite(host, share, SHARE, "bench")
        finally:
            host.poweroff()
