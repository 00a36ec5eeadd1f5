"""``atlas plan --base --head``: what merging a branch would change, for a pull request.

Each environment of the head revision is planned through the one planning path
(``pipeline.plan_revision``) against a host simulated from the base revision: what a
host converged to base has (its files, its units running), so the plan lists exactly
what the merge changes. An environment new in head, or invalid in base, is planned
against an empty host; one invalid in head reports its problems instead of a plan.
Without the environment's key, secrets stay sealed: they compare by their tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import pipeline
from reconciler.actions import Plan
from reconciler.errors import ManifestError, Problem
from reconciler.manifests.assemble import environment_names
from reconciler.manifests.load import RepoDocuments, load_repository
from reconciler.model import Revision
from reconciler.render.desired import RenderContext, Rendered
from reconciler.secrets.sources import SealedSecrets, SecretsFor, SecretsSource
from reconciler.source import Checkout, checkout


@dataclass(frozen=True)
class EnvironmentReview:
    environment: str
    plan: Plan | None  # None: head is invalid for this environment
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Review:
    base: Revision
    head: Revision
    environments: tuple[EnvironmentReview, ...]

    @property
    def changes(self) -> bool:
        return any(e.plan is not None and not e.plan.empty for e in self.environments)

    @property
    def failed(self) -> bool:
        return any(e.plan is None for e in self.environments)


def _base_rendered(
    co: Checkout, repo: RepoDocuments, env: str, ctx: RenderContext, secrets: SecretsSource
) -> Rendered | None:
    if env not in repo.environments:
        return None
    try:
        return pipeline.prepare(co, env, ctx, secrets, repo).rendered
    except ManifestError:
        return None


@dataclass(frozen=True)
class Change:
    """A proposed change: merging ``head`` into ``base`` of ``repo`` (manifests at ``path``)."""

    repo: str
    base: str
    head: str
    path: str = "."


def review(
    change: Change,
    environments: Sequence[str] | None,
    ctx: RenderContext,
    secrets_for: SecretsFor,
    cache_dir: Path,
) -> Review:
    """Plan ``change`` for ``environments`` (default: every environment of head)."""
    base_co = checkout(change.repo, change.base, change.path, cache_dir, fetch=True)
    head_co = checkout(change.repo, change.head, change.path, cache_dir, fetch=False)
    base_repo, head_repo = load_repository(base_co.root), load_repository(head_co.root)
    out = []
    for env in environments or environment_names(head_repo):
        secrets = secrets_for(env) or SealedSecrets()
        try:
            prepared = pipeline.prepare(head_co, env, ctx, secrets, head_repo)
        except ManifestError as exc:
            out.append(EnvironmentReview(env, None, tuple(exc.problems)))
            continue
        host = pipeline.SimulatedHost(_base_rendered(base_co, base_repo, env, ctx, secrets))
        out.append(EnvironmentReview(env, pipeline.plan_revision(prepared, host).plan))
    return Review(base_co.revision, head_co.revision, tuple(out))
