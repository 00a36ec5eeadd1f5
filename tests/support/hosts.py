"""A host for planner and applier tests: a folder as root, the in-memory runtime,
a real state database. The real-systemd tests use tests/sysd.py instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler import pipeline
from reconciler.actions import Plan
from reconciler.apply import Applier
from reconciler.host.paths import HostLayout, host_layout
from reconciler.host.testing import FakeInstaller, FakeProbe, FakeRuntime
from reconciler.loop import Host
from reconciler.render.desired import HostFacts, RenderContext
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets, SecretsSource
from reconciler.state import StateStore, state_path
from seams.testing import FakeClock


@dataclass
class FolderHost:
    root: Path
    scope: str = "user"
    runtime: FakeRuntime = field(default_factory=FakeRuntime)
    http: FakeProbe = field(default_factory=FakeProbe)
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        env = {"HOME": "/home/atlas"}
        self.layout: HostLayout = host_layout(
            "user" if self.scope == "user" else "system", self.root, env
        )
        self.store = StateStore(state_path(self.layout.on_disk(self.layout.reconciler_dir)))
        self.facts = HostFacts.current()
        self.releases = FakeInstaller(
            self.layout.on_disk(self.layout.releases_dir), self.clock.wall
        )
        self.ctx = RenderContext(self.layout, self.facts)

    @property
    def host(self) -> Host:
        """This folder host as the reconcile loop reaches it."""
        return Host(self.layout, self.runtime, self.http, self.clock, self.facts, self.releases)

    def prepare(self, repo: Path, env: str, key: Path | None = None) -> pipeline.Prepared:
        co = pipeline.fetch(pipeline.Target(str(repo), None, ".", env), self.root / "cache")
        secrets: SecretsSource | None = KeyRingSecrets(load_key_file(key)) if key else None
        return pipeline.prepare(co, env, self.ctx, secrets)

    def plan(self, repo: Path, env: str, key: Path | None = None) -> tuple[Plan, pipeline.Prepared]:
        prepared = self.prepare(repo, env, key)
        live = pipeline.LiveHost(self.layout, self.runtime, self.store.inventory())
        return pipeline.plan_revision(prepared, live).plan, prepared

    def converge(self, repo: Path, env: str, key: Path | None = None) -> Plan:
        plan, prepared = self.plan(repo, env, key)
        Applier(self.layout, self.runtime, self.store, self.releases).apply(plan, prepared.rendered)
        return plan

    def disk(self, host_path: str) -> Path:
        return self.layout.on_disk(host_path)
