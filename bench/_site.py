"""Shared set-up for the reconciler benchmarks: the end-to-end tests' site (a git
repository of the example manifests with free ports) on a private systemd user
manager booted for the run (needs root, like those tests)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from atlas.usermanager import PrivateManager, why_unavailable  # noqa: E402
from tests.support.git import git  # noqa: E402
from tests.support.sites import Site  # noqa: E402

__all__ = ["BenchSite", "git"]


class BenchSite(Site):
    def __init__(self) -> None:
        reason = why_unavailable()
        if reason:
            raise SystemExit(f"cannot run: {reason}")
        manager = PrivateManager()
        manager.start()
        super().__init__(manager, Path(tempfile.mkdtemp(prefix="repos-", dir=manager.base)))

    def watch_command(self, interval: str) -> list[str]:
        """``atlas reconcile --watch`` of this site, polling every ``interval``."""
        return [
            sys.executable, "-m", "atlas", "reconcile", "--watch", *self.reconcile_args(),
            "--interval", interval, "--metrics-addr", f"127.0.0.1:{self.reconciler}",
        ]  # fmt: skip

    def show(self, unit: str, *props: str) -> dict[str, str]:
        return self.manager.show(unit, *props)

    def close(self) -> None:
        self.manager.cleanup()
