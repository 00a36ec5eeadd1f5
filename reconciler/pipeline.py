"""The one planning path: fetch → load → validate → build → render → observe → plan.

Each stage is a function of its own module; this module strings them together, and
everything that plans goes through ``plan_revision``: the reconcile loop (on the live
host), ``atlas reconcile --dry-run`` (the live host, read only) and ``atlas plan``
for a pull request (a host simulated from the base revision). A dry run therefore
prints exactly the plan apply would run, carried-over work included.

What the planner knows of a host is a ``HostView``: its inventory, the actions a
killed run still owes, and a way to observe it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from reconciler import build as build_stage
from reconciler.actions import Plan
from reconciler.errors import ManifestError
from reconciler.host.paths import HostLayout
from reconciler.host.runtime import Runtime
from reconciler.inventory import Inventory
from reconciler.manifests.assemble import EnvManifests, assemble
from reconciler.manifests.load import Limits, RepoDocuments, load_repository
from reconciler.manifests.versions import release_problems
from reconciler.model import DesiredState, ReconcilerInvocation, Revision
from reconciler.observe import Observed, observe, simulated
from reconciler.plan import carried_over, plan
from reconciler.render.components import render
from reconciler.render.desired import RenderContext, Rendered
from reconciler.secrets.sources import SecretsSource
from reconciler.source import Checkout, checkout, tree_of

Pending = Sequence[Mapping[str, Any]]  # journaled actions of a killed run, not done


@dataclass(frozen=True)
class Target:
    """What to converge to: a repository, a ref, a folder in it, an environment."""

    repo: str
    ref: str | None
    path: str
    environment: str

    @property
    def invocation(self) -> ReconcilerInvocation:
        """How the reconciler's own unit should fetch: local paths made absolute."""
        repo = self.repo
        if "://" not in repo and Path(repo).exists():
            repo = str(Path(repo).resolve())
        return ReconcilerInvocation(repo, self.ref or "HEAD", self.path)


@dataclass(frozen=True)
class Prepared:
    checkout: Checkout
    manifests: EnvManifests
    desired: DesiredState
    rendered: Rendered


@dataclass(frozen=True)
class Planned:
    prepared: Prepared
    plan: Plan
    observed: Observed

    @property
    def revision(self) -> Revision:
        return self.prepared.checkout.revision


class HostView(Protocol):
    """What the planner knows of a host."""

    @property
    def inventory(self) -> Inventory: ...

    @property
    def pending(self) -> Pending: ...

    def observe(self, rendered: Rendered) -> Observed: ...


@dataclass(frozen=True)
class LiveHost:
    """This host: files read under ``layout``, units asked of ``runtime`` (None: unknown)."""

    layout: HostLayout
    runtime: Runtime | None
    inventory: Inventory = field(default_factory=Inventory)
    pending: Pending = ()

    def observe(self, rendered: Rendered) -> Observed:
        return observe(self.layout, rendered, self.inventory, self.runtime)


@dataclass(frozen=True)
class SimulatedHost:
    """A host as it would be once ``base`` is applied and healthy (None: an empty one)."""

    base: Rendered | None = None
    pending: Pending = ()

    @cached_property
    def inventory(self) -> Inventory:
        # env files are listed under a host key; a simulated host gets a throwaway one
        return Inventory() if self.base is None else Inventory.of(self.base, os.urandom(32))

    def observe(self, rendered: Rendered) -> Observed:
        return Observed({}, {}, {}) if self.base is None else simulated(self.base)


def fetch(
    target: Target, cache_dir: Path, do_fetch: bool = True, snapshot: bool = False
) -> Checkout:
    return checkout(
        target.repo, target.ref, target.path, cache_dir, fetch=do_fetch, snapshot=snapshot
    )


def revisit(target: Target, revision: Revision, cache_dir: Path) -> Checkout:
    """An earlier revision again, from the cache (for rollbacks)."""
    return Checkout(tree_of(target.repo, revision, target.path, cache_dir), revision)


def validated(
    co: Checkout, environment: str, repo: RepoDocuments | None = None, limits: Limits | None = None
) -> EnvManifests:
    """Load (unless ``repo`` is the checkout already loaded) and validate; ManifestError
    with every problem when invalid."""
    manifests = assemble(repo or load_repository(co.root, limits), environment, limits)
    if manifests.problems:
        raise ManifestError(list(manifests.problems))
    return manifests


def prepare(
    co: Checkout,
    environment: str,
    ctx: RenderContext,
    secrets: SecretsSource | None,
    repo: RepoDocuments | None = None,
) -> Prepared:
    """Validate, build and render one environment of a checkout; a Deployment's version
    this host cannot run (``release_problems``) is refused here."""
    manifests = validated(co, environment, repo)
    problems = release_problems(manifests.manifests, ctx.facts.atlas_version)
    if problems:
        raise ManifestError(problems)
    desired = build_stage.build(manifests, co.revision, co.root, secrets)
    return Prepared(co, manifests, desired, render(desired, ctx))


def plan_revision(prepared: Prepared, host: HostView) -> Planned:
    """The plan that takes ``host`` to ``prepared``, with a killed run's owed work."""
    observed = host.observe(prepared.rendered)
    result = plan(
        prepared.rendered,
        observed,
        host.inventory,
        environment=prepared.desired.environment,
        revision=prepared.checkout.revision,
    )
    return Planned(prepared, carried_over(result, host.pending, prepared.rendered), observed)


def dry_run(
    target: Target,
    ctx: RenderContext,
    secrets: SecretsSource | None,
    host: HostView,
    cache_dir: Path,
) -> Planned:
    """Fetch → plan, changing nothing: what ``atlas reconcile --once`` would apply now."""
    co = fetch(target, cache_dir)
    return plan_revision(prepare(co, target.environment, ctx, secrets), host)
