"""Releases (spec.releases): planned before any unit changes, pruned after, refused
when they cannot run; with the in-memory installer on a folder host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import planfmt
from reconciler.apply import Applier
from reconciler.build import build
from reconciler.errors import ManifestError
from reconciler.host.releases import (
    MARKER,
    PipInstaller,
    ReleaseError,
    ReleaseRequest,
    in_use,
    read_installed,
    shown,
)
from reconciler.manifests.assemble import assemble
from reconciler.manifests.load import load_repository
from reconciler.model import Revision
from seams.build import version
from tests.support.hosts import FolderHost

STATE = "/home/atlas/.local/state/atlas"
RELEASES = f"{STATE}/releases"
WHEELS = "/srv/wheels"
OWN = version()


@pytest.fixture
def host(tmp_path: Path) -> FolderHost:
    return FolderHost(tmp_path / "root")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def with_releases(repo: Path, keep: int = 3) -> None:
    edit(
        repo / "environments/development/environment.yaml",
        "  logLevel: debug\n",
        f"  logLevel: debug\n  releases: {{source: {WHEELS}, keep: {keep}}}\n",
    )


def set_version(repo: Path, component: str, new: str, extra: str = "") -> None:
    """``component``'s Deployment at version ``new`` (the others stay at 0.1.0)."""
    path = repo / "base/deployments.yaml"
    text = path.read_text()
    head = f"  component: {component}\n  version: 0.1.0\n"
    assert head in text
    path.write_text(text.replace(head, f"  component: {component}\n  version: {new}\n{extra}"))


def verbs(plan) -> list[tuple[str, str]]:
    return [(a.verb, a.target) for a in plan.actions]


def test_canary_is_refused_and_blue_green_only_for_the_api(example_repo: Path) -> None:
    edit(example_repo / "base/deployments.yaml", "{type: rolling, maxUnavailable: 1}",
         "{type: canary, steps: [{replicas: 1}]}")  # fmt: skip
    edit(example_repo / "base/deployments.yaml", "{type: recreate}",
         "{type: blueGreen, blueGreen: {previewPort: 18500}}")  # fmt: skip
    problems = assemble(load_repository(example_repo), "development").problems
    messages = sorted(f"{p.ref}: {p.message}" for p in problems)
    assert messages == [
        "Deployment/api: spec.strategy.type: canary is not implemented yet: "
        "use blueGreen, rolling or recreate",
        "Deployment/core: spec.strategy.type: blueGreen needs a component that listens on a "
        "shared port (api), not core: use rolling or recreate",
    ]


def test_preview_ports_may_not_take_another_components_port(example_repo: Path) -> None:
    edit(example_repo / "base/deployments.yaml", "{type: rolling, maxUnavailable: 1}",
         "{type: blueGreen, blueGreen: {previewPort: 18079}}")  # fmt: skip
    problems = assemble(load_repository(example_repo), "development").problems
    assert [f"{p.ref}: {p.message}" for p in problems] == [
        "Deployment/api: spec.strategy.blueGreen.previewPort: 2 replicas (old and new) listen "
        "on preview ports 18079-18080, but 18080 is spec.api.port of Environment/development"
    ]


def test_blue_green_api_is_accepted_with_the_schema_defaults(example_repo: Path) -> None:
    edit(example_repo / "base/deployments.yaml", "{type: rolling, maxUnavailable: 1}",
         "{type: blueGreen, blueGreen: {previewPort: 18500}}")  # fmt: skip
    manifests = assemble(load_repository(example_repo), "development")
    assert manifests.ok, manifests.problems
    desired = build(manifests, Revision("x"), example_repo, None)
    api = desired.deployment("api")
    assert api is not None and api.strategy.blue_green is not None
    bg = api.strategy.blue_green
    assert (bg.auto_promote, bg.scale_down_delay_s, bg.preview_port) == (True, 30.0, 18500)
    names = [(m.name, m.max_over_stable, m.max_ratio_to_stable) for m in bg.analysis.metrics]
    assert names == [("errorRatio", 0.01, None), ("p99", None, 2.0)]


def test_another_version_without_releases_is_refused_with_the_fix(
    host: FolderHost, example_repo: Path
) -> None:
    set_version(example_repo, "api", "0.2.0")
    with pytest.raises(ManifestError) as caught:
        host.plan(example_repo, "development")
    (problem,) = caught.value.problems
    assert problem.ref == "Deployment/api" and problem.file == "base/deployments.yaml"
    assert problem.message.startswith(
        f"spec.version: Atlas 0.2.0 is not the Atlas this host runs ({OWN}), and no "
        "spec.releases says where to install 0.2.0 from: set spec.releases.source"
    )
    assert problem.message.endswith(f"in Environment/development, or use version {OWN}")


def test_releases_install_before_anything_and_units_run_them(
    host: FolderHost, example_repo: Path
) -> None:
    with_releases(example_repo)
    set_version(example_repo, "api", "0.2.0")
    plan, prepared = host.plan(example_repo, "development")
    assert verbs(plan)[:2] == [
        ("install-release", f"{RELEASES}/0.1.0"),
        ("install-release", f"{RELEASES}/0.2.0"),
    ]
    assert "install-release" not in [a.verb for a in plan.actions[2:]]
    api = prepared.rendered.file("/home/atlas/.config/systemd/user/atlas-api.service")
    assert api is not None
    assert f"ExecStart={RELEASES}/0.2.0/bin/python -m atlas api --config" in api.content.decode()
    assert "⇣ install-release" in planfmt.as_text(plan)
    host.converge(example_repo, "development")
    again, _ = host.plan(example_repo, "development")
    assert again.empty, planfmt.as_text(again)


def test_a_release_that_cannot_be_installed_fails_before_anything_stops(
    host: FolderHost, example_repo: Path
) -> None:
    with_releases(example_repo)
    host.converge(example_repo, "development")
    running = dict(host.runtime.units)
    host.runtime.calls.clear()
    set_version(example_repo, "api", "0.2.0")
    plan, prepared = host.plan(example_repo, "development")
    assert ("restart", "atlas-api.service") in verbs(plan)
    host.releases.failing.add("0.2.0")
    applier = Applier(host.layout, host.runtime, host.store, host.releases)
    with pytest.raises(ReleaseError, match=r"release 0\.2\.0 from /srv/wheels"):
        applier.apply(plan, prepared.rendered)
    assert host.runtime.calls == [] and host.runtime.units == running
    assert host.store.journal_pending() == []
    unit = host.disk("/home/atlas/.config/systemd/user/atlas-api.service").read_text()
    assert f"{RELEASES}/0.1.0/bin/python" in unit, "no file was rewritten either"


def test_old_releases_are_pruned_after_the_units_keeping_what_units_use(
    host: FolderHost, example_repo: Path
) -> None:
    with_releases(example_repo, keep=2)
    for v in ("0.1.1", "0.1.2", "0.1.3"):  # installed earlier, oldest first
        host.clock.advance(60)
        host.releases.install(ReleaseRequest(v, WHEELS))
    host.clock.advance(60)
    host.converge(example_repo, "development")  # runs 0.1.0 (installed now)
    assert sorted(p.name for p in host.disk(RELEASES).iterdir()) == ["0.1.0", "0.1.3"]
    set_version(example_repo, "api", "0.2.0")
    host.clock.advance(60)
    plan, _ = host.plan(example_repo, "development")
    order = [a.verb for a in plan.actions]
    assert order[0] == "install-release" and order[-1] == "prune-release"
    # 0.2.0 and 0.1.0 are the newest two, and 0.1.0 is still run by core: 0.1.3 goes
    assert [t for v, t in verbs(plan) if v == "prune-release"] == [f"{RELEASES}/0.1.3"]


def test_a_version_still_named_by_a_unit_file_is_kept() -> None:
    units = {"a": f"ExecStart={RELEASES}/0.3.0/bin/python -m atlas api\n", "b": "ExecStart=/x"}
    assert in_use(units, RELEASES) == {"0.3.0"}


def test_one_version_has_one_checksum_and_a_checksum_needs_releases(
    host: FolderHost, example_repo: Path
) -> None:
    set_version(example_repo, "api", "0.1.0", f"  sha256: {'ab' * 32}\n")
    with pytest.raises(ManifestError, match=r"spec\.sha256: checked only when the release is"):
        host.plan(example_repo, "development")
    with_releases(example_repo)
    set_version(example_repo, "core", "0.1.0", f"  sha256: {'cd' * 32}\n")
    with pytest.raises(ManifestError) as caught:
        host.plan(example_repo, "development")
    (problem,) = caught.value.problems
    assert problem.ref == "Deployment/core"
    assert problem.message == (
        "spec.sha256: version 0.1.0 is one release, but Deployment/api gives its wheel "
        f"sha256 {'ab' * 32}: expected the same"
    )


def test_a_half_install_is_not_installed_and_an_installed_release_never_changes(
    tmp_path: Path,
) -> None:
    releases = tmp_path / "releases"
    (releases / "0.3.0/bin").mkdir(parents=True)  # no marker: killed mid-install
    (releases / "0.4.0").mkdir()
    marker = {"version": "0.4.0", "wheel_sha256": "ab" * 32, "installed_at": 5.0}
    (releases / "0.4.0" / MARKER).write_text(json.dumps(marker))
    assert list(read_installed(releases)) == ["0.4.0"]
    installer = PipInstaller(releases, "/nonexistent/python")
    assert installer.install(ReleaseRequest("0.4.0", WHEELS)).installed_at == 5.0
    with pytest.raises(ReleaseError, match="releases are immutable"):
        installer.install(ReleaseRequest("0.4.0", WHEELS, "cd" * 32))


def test_an_index_url_never_shows_its_credentials() -> None:
    assert shown("https://ops:hunter2@pypi.example/simple") == "https://pypi.example/simple"
    assert shown("/srv/wheels") == "/srv/wheels"


def test_a_pull_request_plan_installs_only_the_new_version(example_repo: Path) -> None:
    from reconciler import pipeline
    from reconciler.observe import simulated

    with_releases(example_repo)
    base = FolderHost(example_repo.parent / "base").prepare(example_repo, "development")
    set_version(example_repo, "api", "0.2.0")
    head = FolderHost(example_repo.parent / "head").prepare(example_repo, "development")
    plan = pipeline.plan_revision(head, pipeline.SimulatedHost(base.rendered)).plan
    assert [a.target for a in plan.actions if a.verb == "install-release"] == [f"{RELEASES}/0.2.0"]
    assert simulated(base.rendered).releases.keys() == {"0.1.0"}


def test_atlas_validate_refuses_a_version_this_atlas_cannot_run(example_repo: Path, capsys) -> None:
    from atlas.cli import main

    set_version(example_repo, "api", "0.2.0")
    assert main(["validate", str(example_repo), "--env", "development"]) == 1
    assert "spec.version: Atlas 0.2.0 is not the Atlas this host runs" in capsys.readouterr().out
    with_releases(example_repo)
    assert main(["validate", str(example_repo), "--env", "development"]) == 0
