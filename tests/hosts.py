"""A host for planner and applier tests: a folder as root, the in-memory runtime,
a real state database. The real-systemd tests use tests/sysd.py instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler import pipeline
from reconciler.apply import Applier
from reconciler.host.paths import HostLayout, host_layout
from reconciler.host.testing import FakeRuntime
from reconciler.plan import Plan
from reconciler.render.desired import HostFacts, RenderContext
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets, SecretsSource
from reconciler.state import StateStore, state_path


@dataclass
class FolderHost:
    root: Path
    scope: str = "user"
    runtime: FakeRuntime = field(default_factory=FakeRuntime)

    def __post_init__(self) -> None:
        env = {"HOME": "/home/atlas"}
        self.layout: HostLayout = host_layout(
            "user" if self.scope == "user" else "system", self.root, env
        )
        self.store = StateStore(state_path(self.layout.on_disk(self.layout.reconciler_dir)))
        self.ctx = RenderContext(self.layout, HostFacts.current())

    def prepare(self, repo: Path, env: str, key: Path | None = None) -> pipeline.Prepared:
        co = pipeline.fetch(pipeline.Target(str(repo), None, ".", env), self.root / "cache")
        secrets: SecretsSource | None = KeyRingSecrets(load_key_file(key)) if key else None
        return pipeline.prepare_checkout(co, env, self.ctx, secrets)

    def plan(self, repo: Path, env: str, key: Path | None = None) -> tuple[Plan, pipeline.Prepared]:
        prepared = self.prepare(repo, env, key)
        plan, _ = pipeline.plan_for(prepared, self.ctx, self.store.inventory(), self.runtime)
        return plan, prepared

    def converge(self, repo: Path, env: str, key: Path | None = None) -> Plan:
        plan, prepared = self.plan(repo, env, key)
        Applier(self.layout, self.runtime, self.store).apply(plan, prepared.rendered)
        return plan

    def disk(self, host_path: str) -> Path:
        return self.layout.on_disk(host_path)
