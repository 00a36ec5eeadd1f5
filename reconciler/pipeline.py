"""The stages up to a plan, in order: fetch → load → validate → build → render →
observe → plan. Each stage is a function of its own module; this module only
strings them together so the dry run and the real run share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler import build as build_stage
from reconciler.errors import ManifestError
from reconciler.host.runtime import Runtime
from reconciler.inventory import Inventory
from reconciler.manifests.assemble import EnvManifests, assemble
from reconciler.manifests.load import Limits, load_repository
from reconciler.model import DesiredState, ReconcilerInvocation
from reconciler.observe import Observed, observe
from reconciler.plan import Plan, plan
from reconciler.render.components import render
from reconciler.render.desired import RenderContext, Rendered
from reconciler.secrets.sources import SecretsSource
from reconciler.source import Checkout, checkout


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


def fetch(
    target: Target, cache_dir: Path, do_fetch: bool = True, snapshot: bool = False
) -> Checkout:
    return checkout(
        target.repo, target.ref, target.path, cache_dir, fetch=do_fetch, snapshot=snapshot
    )


def validated(root: Path, environment: str, limits: Limits | None = None) -> EnvManifests:
    """Load and validate; raise ManifestError with every problem when invalid."""
    manifests = assemble(load_repository(root, limits), environment, limits)
    if manifests.problems:
        raise ManifestError(list(manifests.problems))
    return manifests


def prepare_checkout(
    co: Checkout, environment: str, ctx: RenderContext, secrets: SecretsSource | None
) -> Prepared:
    manifests = validated(co.root, environment)
    desired = build_stage.build(manifests, co.revision, co.root, secrets)
    return Prepared(co, manifests, desired, render(desired, ctx))


def plan_for(
    prepared: Prepared, ctx: RenderContext, inventory: Inventory, runtime: Runtime | None
) -> tuple[Plan, Observed]:
    observed = observe(ctx.layout, prepared.rendered, inventory, runtime)
    result = plan(
        prepared.rendered,
        observed,
        inventory,
        environment=prepared.desired.environment,
        revision=prepared.checkout.revision,
    )
    return result, observed
