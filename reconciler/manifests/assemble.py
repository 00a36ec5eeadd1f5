"""The manifests of one environment: ``base/`` and ``environments/<env>/`` merged and
validated — envelopes, duplicates, overlays, schemas, references — with every
problem found, each with file, line, Kind/name and what was expected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from reconciler.errors import Problem
from reconciler.manifests.envelope import ENVIRONMENT_ONLY_KINDS, KIND_SCHEMAS
from reconciler.manifests.load import Limits, RepoDocuments
from reconciler.manifests.overlay import Manifest, collect, overlay
from reconciler.manifests.references import open_api_warnings, reference_problems
from reconciler.manifests.schema import schema_problems
from reconciler.manifests.versions import release_problems


@dataclass(frozen=True)
class EnvManifests:
    """The valid manifests of one environment, and every problem found assembling them."""

    environment: str
    manifests: tuple[Manifest, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def get(self, kind: str, name: str) -> Manifest | None:
        for m in self.manifests:
            if m.kind == kind and m.name == name:
                return m
        return None


def environment_names(repo: RepoDocuments) -> list[str]:
    return sorted(repo.environments)


def _merged(repo: RepoDocuments, env: str, problems: list[Problem]) -> list[Manifest]:
    base = collect(repo.base, problems, "base/")
    for (kind, name), m in list(base.items()):
        if kind in ENVIRONMENT_ONLY_KINDS:
            problems.append(m.problem((), f"a {kind} belongs in environments/<env>/, not in base/"))
            del base[(kind, name)]
    overlays = collect(repo.environments[env], problems, f"environments/{env}/")
    merged = dict(base)
    for key, m in overlays.items():
        if key in merged:
            doc = next(d for d in repo.environments[env] if (d.kind, d.name) == key)
            merged[key] = overlay(merged[key], doc)
        else:
            merged[key] = m
    return list(merged.values())


def assemble(repo: RepoDocuments, env: str, limits: Limits | None = None) -> EnvManifests:
    """Merge base/ with environments/<env>/ and validate the result."""
    problems: list[Problem] = list(repo.problems)
    if env not in repo.environments:
        known = ", ".join(environment_names(repo)) or "none"
        problems.append(
            Problem("environments", 0, "", f"unknown environment {env!r}: expected one of {known}")
        )
        return EnvManifests(env, (), tuple(sorted(set(problems))))
    every = _merged(repo, env, problems)
    valid: list[Manifest] = []
    for m in every:
        bad = schema_problems(m)
        problems.extend(bad)
        if not bad:
            valid.append(m)
    problems.extend(reference_problems(repo.root, env, every, valid, limits or Limits()))
    ordered = tuple(sorted(valid, key=lambda m: (list(KIND_SCHEMAS).index(m.kind), m.name)))
    return EnvManifests(env, ordered, tuple(sorted(set(problems))))


def validate_repository(
    repo: RepoDocuments,
    envs: Iterable[str] | None = None,
    limits: Limits | None = None,
    installed: str | None = None,
) -> dict[str, EnvManifests]:
    """Assemble each environment (all of them when ``envs`` is None); with ``installed``
    (the Atlas that would run them), versions it cannot run are problems too."""
    chosen = list(envs) if envs is not None else environment_names(repo)
    results = {env: assemble(repo, env, limits) for env in chosen}
    if installed is None:
        return results
    return {
        env: replace(
            r,
            problems=tuple(sorted(set(r.problems) | set(release_problems(r.manifests, installed)))),
        )
        for env, r in results.items()
    }


def all_problems(results: Mapping[str, EnvManifests], repo: RepoDocuments) -> list[Problem]:
    found = set(repo.problems)
    for result in results.values():
        found.update(result.problems)
    if not results and not repo.problems:
        found.add(
            Problem("environments", 0, "", "no environments: expected environments/<name>/ folders")
        )
    return sorted(found)


def all_warnings(results: Mapping[str, EnvManifests]) -> list[Problem]:
    """What is valid but likely a mistake: an API open beyond loopback with no tokens."""
    found: list[Problem] = []
    for result in results.values():
        found.extend(open_api_warnings(result.manifests))
    return sorted(found)
