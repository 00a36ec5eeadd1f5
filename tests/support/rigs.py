"""Reconcilers on a folder host for fast tests: one cycle at a time (``Rig``), or in
``--watch`` mode on a thread with its real HTTP endpoint (``Watching``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from reconciler import pipeline
from reconciler.loop import CycleResult, Options, Reconciler
from reconciler.metrics import ReconcilerMetrics
from reconciler.secrets.sources import SecretsSource
from reconciler.watch.server import ReconcilerServer
from tests.support.hosts import FolderHost
from tests.support.net import free_port


class Rig:
    def __init__(
        self,
        root: Path,
        repo: Path,
        self_heal: bool = True,
        env: str = "development",
        secrets: Callable[[str], SecretsSource | None] = lambda env: None,
    ) -> None:
        self.host = FolderHost(root)
        self.http = self.host.http
        self.clock = self.host.clock
        self.metrics = ReconcilerMetrics()
        self.logs: list[tuple[str, str]] = []
        self.reconciler = Reconciler(
            pipeline.Target(str(repo), "main", ".", env),
            self.host.host,
            self.host.store,
            secrets,
            metrics=self.metrics,
            log=lambda level, msg: self.logs.append((level, msg)),
            options=Options(self_heal=self_heal, stable_for=0.5),
        )

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels or None)

    def files(self) -> dict[Path, bytes]:
        return {
            p: p.read_bytes()
            for p in sorted(self.host.root.glob("home/atlas/.config/**/*"))
            if p.is_file()
        }


class Watching:
    """A reconciler in --watch mode on a thread, with its HTTP endpoint."""

    def __init__(
        self, root: Path, repo: str, ref: str, secret: bytes | None, interval: float = 60.0
    ) -> None:
        self.host = FolderHost(root)
        self.metrics = ReconcilerMetrics()
        self.reconciler = Reconciler(
            pipeline.Target(repo, ref, ".", "development"),
            self.host.host,
            self.host.store,
            lambda env: None,
            metrics=self.metrics,
            options=Options(stable_for=0.1),
        )
        self.stop, self.wake = threading.Event(), threading.Event()
        self.results: list[CycleResult] = []
        self.cycled = threading.Condition()
        self.server = ReconcilerServer(
            "127.0.0.1",
            free_port(),
            self.metrics.exposition,
            lambda: True,
            lambda reason: self.wake.set(),
            secret,
        )
        self.server.start()
        self.thread = threading.Thread(
            target=self.reconciler.watch,
            args=(self.stop, self.wake, interval, self._on_cycle),
            daemon=True,
        )

    def _on_cycle(self, result: CycleResult) -> None:
        with self.cycled:
            self.results.append(result)
            self.cycled.notify_all()

    def start(self) -> None:
        self.thread.start()
        self.wait_for(1)

    def wait_for(self, n: int, timeout: float = 20.0) -> CycleResult:
        with self.cycled:
            assert self.cycled.wait_for(lambda: len(self.results) >= n, timeout), (
                f"only {len(self.results)} cycle(s) after {timeout}s"
            )
            return self.results[n - 1]

    def applied_sha(self) -> str | None:
        record = self.host.store.last_applied("development")
        return record.sha if record else None

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.thread.join(timeout=20)
        self.server.stop()
