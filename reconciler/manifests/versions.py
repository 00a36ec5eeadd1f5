"""Whether the versions the Deployments name can run on this host.

With the Environment's ``spec.releases``, each version is installed from there (the
Deployments sharing a version must agree on its ``sha256``). Without it, every unit
runs the Atlas installed beside the reconciler, so a Deployment naming another
version is refused here, before anything is planned: otherwise the host would run
something other than what the manifests say.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import Problem
from reconciler.manifests.overlay import Manifest


def release_problems(manifests: Sequence[Manifest], installed: str) -> list[Problem]:
    """Problems of the Deployments' versions, for a host whose own Atlas is ``installed``."""
    env = next((m for m in manifests if m.kind == "Environment"), None)
    deployments = [m for m in manifests if m.kind == "Deployment"]
    if env is not None and "releases" in env.spec:
        return _checksum_conflicts(deployments)
    where = env.ref if env is not None else "the Environment"
    problems = []
    for m in deployments:
        version = m.spec.get("version")
        if version != installed:
            problems.append(
                m.problem(
                    ("spec", "version"),
                    f"spec.version: Atlas {version} is not the Atlas this host runs "
                    f"({installed}), and no spec.releases says where to install {version} "
                    f"from: set spec.releases.source (a folder of wheels or a package index) "
                    f"in {where}, or use version {installed}",
                )
            )
        elif "sha256" in m.spec:
            problems.append(
                m.problem(
                    ("spec", "sha256"),
                    "spec.sha256: checked only when the release is installed from "
                    "spec.releases, which the Environment does not set",
                )
            )
    return problems


def _checksum_conflicts(deployments: list[Manifest]) -> list[Problem]:
    first: dict[str, Manifest] = {}
    problems = []
    for m in deployments:
        version, digest = m.spec.get("version"), m.spec.get("sha256")
        if not isinstance(version, str) or digest is None:
            continue
        seen = first.setdefault(version, m)
        if seen.spec["sha256"] != digest:
            problems.append(
                m.problem(
                    ("spec", "sha256"),
                    f"spec.sha256: version {version} is one release, but {seen.ref} gives "
                    f"its wheel sha256 {seen.spec['sha256']}: expected the same",
                )
            )
    return problems
