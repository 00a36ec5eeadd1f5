"""Shared set-up for the reconciler benchmarks: the end-to-end tests' site (a git
repository of the example manifests with free ports) on a private systemd user
manager booted for the run (needs root, like those tests)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from atlas.usermanager import PrivateManager, why_unavailable  # noqa: E402
from tests.support.git import git  # noqa: E402
from tests.support.sites import Site  # noqa: E402

__all__ = ["BenchSite", "answers", "figures", "git", "wait_for"]


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def answers(url: str) -> bool:
    """GET ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def figures(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


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

    @contextmanager
    def watching(self, interval: str) -> Iterator[subprocess.Popen[bytes]]:
        """Converge once, then ``--watch`` at ``interval`` until the block ends."""
        first = self.atlas("reconcile", "--once", *self.reconcile_args())
        if first.returncode != 0:
            raise SystemExit(first.stdout + first.stderr)
        watch = subprocess.Popen(
            self.watch_command(interval),
            env=self.manager.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{self.reconciler}/healthz"
            wait_for(lambda: answers(url), 60, "the watch loop")
            yield watch
        finally:
            watch.terminate()
            watch.wait(timeout=60)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        return self.manager.show(unit, *props)

    def close(self) -> None:
        self.manager.cleanup()

    def __enter__(self) -> BenchSite:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
