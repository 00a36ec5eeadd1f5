"""The reconcile loop on a folder host: apply, verify, roll back, drift, invalid commits.

The runtime is the in-memory FakeRuntime, HTTP health checks a fake probe and time a
fake clock, so these run in milliseconds; tests/system/test_systemd_e2e.py repeats the
important paths against a real systemd manager and real services.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from reconciler import pipeline
from reconciler.actions import WriteFile, action_record
from reconciler.errors import LockBusy
from reconciler.host.lock import reconcile_lock
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets
from seams.fsio import write_atomic
from tests.support.examples import EXAMPLE, example_values
from tests.support.git import commit, git
from tests.support.rigs import Rig


@pytest.fixture
def rig(tmp_path: Path, ops_repo: Path) -> Rig:
    return Rig(tmp_path / "root", ops_repo)


def test_first_cycle_applies_and_second_is_synced(rig: Rig, ops_repo: Path) -> None:
    first = rig.reconciler.cycle()
    assert first.outcome == "applied", first.reason
    assert first.reason == "4 unit(s) healthy", "what the touched units' verification said"
    assert first.revision == git(ops_repo, "rev-parse", "HEAD")
    assert rig.host.runtime.units["atlas-api.service"].running
    history = rig.host.store.history("development")
    assert [r.outcome for r in history] == ["applied"]
    second = rig.reconciler.cycle()
    assert second.outcome == "synced" and second.plan is not None and second.plan.empty
    assert rig.metric("atlas_reconcile_total", result="success") == 2
    sha = first.revision[:12]
    assert (
        rig.metric("atlas_sync_info", desired_revision=sha, applied_revision=sha, status="Synced")
        == 1
    )
    assert rig.metric("atlas_unit_healthy", unit="atlas-core.service") == 1


def test_health_check_failure_rolls_back(rig: Rig, ops_repo: Path) -> None:
    good = rig.reconciler.cycle().revision
    before = rig.files()
    bad = commit(
        ops_repo,
        "environments/development/environment.yaml",
        "port: 18080",
        "port: 18081",
        "move the API",
    )
    rig.http.failing["http://127.0.0.1:18081/"] = None  # the new API never answers
    result = rig.reconciler.cycle()
    assert result.outcome == "rolled-back", result.reason
    assert "health check http://127.0.0.1:18081/readyz did not pass" in result.reason
    assert rig.files() == before, "the host is back at the last good revision"
    outcomes = [(r.sha, r.outcome) for r in rig.host.store.history("development")]
    assert outcomes[:2] == [(good, "applied"), (bad, "failed")]
    assert rig.metric("atlas_rollbacks_total") == 1
    assert (
        rig.metric(
            "atlas_sync_info",
            desired_revision=bad[:12],
            applied_revision=good[:12],
            status="Failed",
        )
        == 1
    )
    # the failed commit is not retried until a new commit arrives
    calls = len(rig.host.runtime.calls)
    again = rig.reconciler.cycle()
    assert again.outcome == "failed" and "waiting for a new commit" in again.reason
    assert len(rig.host.runtime.calls) == calls
    fixed = commit(
        ops_repo, "environments/development/environment.yaml", "port: 18081", "port: 18082"
    )
    rig.http.failing.clear()
    assert rig.reconciler.cycle().outcome == "applied"
    assert rig.host.store.last_applied("development").sha == fixed


def test_failed_unit_fails_fast_and_rolls_back(rig: Rig, ops_repo: Path) -> None:
    rig.reconciler.cycle()
    commit(ops_repo, "base/sources.yaml", "interval: 1h", "interval: 2h")
    config = rig.host.disk("/home/atlas/.config/atlas/core.json")
    runtime = rig.host.runtime
    real_up = runtime._up

    def up(unit: str) -> None:  # atlas-core fails with the new config, as a service would
        if unit == "atlas-core.service" and b"7200" in config.read_bytes():
            runtime.failing.add(unit)
        else:
            runtime.failing.discard(unit)
        real_up(unit)

    runtime._up = up  # type: ignore[method-assign]
    started = rig.clock.monotonic()
    result = rig.reconciler.cycle()
    assert result.outcome == "rolled-back", result.reason
    assert "atlas-core.service: failed (result exit-code" in result.reason
    assert runtime.units["atlas-core.service"].running
    assert rig.clock.monotonic() - started < 5, "a failed unit must not wait for the timeout"


def test_invalid_commit_changes_nothing(rig: Rig, ops_repo: Path) -> None:
    good = rig.reconciler.cycle().revision
    before = rig.files()
    calls = len(rig.host.runtime.calls)
    bad = commit(ops_repo, "base/sources.yaml", "interval: 1h", "interval: soon")
    result = rig.reconciler.cycle()
    assert result.outcome == "invalid"
    assert "base/sources.yaml:11: Source/welcome: spec.interval" in result.reason
    assert rig.files() == before
    assert len(rig.host.runtime.calls) == calls
    assert rig.metric("atlas_manifest_errors") == 1
    record = rig.host.store.last_attempt("development")
    assert (record.sha, record.outcome) == (bad, "invalid")
    assert rig.host.store.last_applied("development").sha == good
    assert rig.metric("atlas_reconcile_total", result="invalid") == 1


def test_drift_is_healed(rig: Rig) -> None:
    rig.reconciler.cycle()
    rig.host.runtime.stop("atlas-api.service")
    unit = rig.host.disk("/home/atlas/.config/systemd/user/atlas-core.service")
    unit.write_text(unit.read_text().replace("MemoryMax=268435456", "MemoryMax=999999999"))
    result = rig.reconciler.cycle()
    assert result.outcome == "healed"
    assert {(d.kind, d.target.rsplit("/", 1)[-1]) for d in result.drift} == {
        ("unit-stopped", "atlas-api.service"),
        ("file-modified", "atlas-core.service"),
    }
    assert rig.host.runtime.units["atlas-api.service"].running
    assert "MemoryMax=268435456" in unit.read_text()
    assert rig.reconciler.cycle().outcome == "synced"


def test_drift_is_only_reported_without_self_heal(tmp_path: Path, ops_repo: Path) -> None:
    rig = Rig(tmp_path / "root", ops_repo, self_heal=False)
    rig.reconciler.cycle()
    rig.host.runtime.stop("atlas-monitoring.service")
    result = rig.reconciler.cycle()
    assert result.outcome == "drift"
    assert not rig.host.runtime.units["atlas-monitoring.service"].running
    assert rig.metric("atlas_drift_resources", kind="unit-stopped") == 1


def _kill_after_writes(rig: Rig, repo: Path) -> tuple[int, pipeline.Prepared]:
    """Simulate a run killed after writing its files, before restarting atlas-core."""
    plan, prepared = rig.host.plan(repo, "development")
    dead = rig.host.store.begin_revision("development", prepared.checkout.revision, "manual")
    rig.host.store.journal_begin("dead-run", [action_record(a) for a in plan.actions])
    for i, action in enumerate(plan.actions):
        if isinstance(action, WriteFile):
            write_atomic(
                rig.host.disk(str(action.file.path)), action.file.content, action.file.mode
            )
            rig.host.store.journal_done("dead-run", i)
    return dead, prepared


def test_interrupted_restart_is_carried_over(rig: Rig, ops_repo: Path) -> None:
    rig.reconciler.cycle()
    commit(ops_repo, "base/sources.yaml", "interval: 1h", "interval: 3h")
    dead, prepared = _kill_after_writes(rig, ops_repo)
    pid_before = rig.host.runtime.units["atlas-core.service"].main_pid
    result = rig.reconciler.cycle()
    assert result.outcome == "applied", result.reason
    assert ("restart", "atlas-core.service") in [(a.verb, a.target) for a in result.plan.actions]
    assert rig.host.runtime.units["atlas-core.service"].main_pid != pid_before
    assert rig.host.store.journal_pending() == []
    outcomes = {r.id: r.outcome for r in rig.host.store.history("development")}
    assert outcomes[dead] == "interrupted"
    assert rig.host.store.last_applied("development").sha == prepared.checkout.revision.sha


def test_a_dry_run_plans_exactly_what_the_loop_then_applies(rig: Rig, ops_repo: Path) -> None:
    """One planning path: the dry run sees the work a killed run owes, as apply does."""
    rig.reconciler.cycle()
    commit(ops_repo, "base/sources.yaml", "interval: 1h", "interval: 3h")
    _kill_after_writes(rig, ops_repo)
    store = rig.host.store
    live = pipeline.LiveHost(
        rig.host.layout, rig.host.runtime, store.inventory(), store.journal_pending()
    )
    dry = pipeline.dry_run(
        rig.reconciler.target, rig.reconciler.ctx, None, live, tmp_cache(rig)
    ).plan
    assert ("restart", "atlas-core.service") in [(a.verb, a.target) for a in dry.actions]
    applied = rig.reconciler.cycle()
    assert applied.plan is not None
    assert [a.as_dict() for a in applied.plan.actions] == [a.as_dict() for a in dry.actions]
    assert applied.plan.changes == dry.changes


def tmp_cache(rig: Rig) -> Path:
    return rig.host.root / "dry-run-cache"


def test_unreachable_remote_keeps_the_host_running(tmp_path: Path, ops_repo: Path) -> None:
    rig = Rig(tmp_path / "root", ops_repo)
    rig.reconciler.cycle()
    before = rig.files()
    shutil.rmtree(ops_repo)
    result = rig.reconciler.cycle()
    assert result.outcome == "fetch-failed"
    assert "cannot fetch" in result.reason or "does not exist" in result.reason
    assert rig.files() == before
    assert rig.host.runtime.units["atlas-api.service"].running


def test_manual_rollback_to_the_previous_revision(rig: Rig, ops_repo: Path) -> None:
    first = rig.reconciler.cycle().revision
    second = commit(ops_repo, "base/sources.yaml", "interval: 1h", "interval: 2h")
    assert rig.reconciler.cycle().revision == second
    result = rig.reconciler.rollback()
    assert result.outcome == "rolled-back", result.reason
    assert rig.host.store.last_applied("development").sha == first
    # the rolled-back head is not re-applied by the next cycle
    assert rig.reconciler.cycle().outcome == "failed"
    assert rig.host.store.last_applied("development").sha == first


def test_a_second_reconcile_waits_or_exits_clearly(rig: Rig) -> None:
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with reconcile_lock(rig.reconciler.lock_path):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    try:
        with pytest.raises(LockBusy) as caught:
            rig.reconciler.cycle()
        assert "another reconcile (PID" in str(caught.value)
    finally:
        release.set()
        thread.join()
    assert rig.reconciler.cycle().outcome == "applied"


def test_the_reconcilers_own_restart_waits_until_the_run_is_recorded(
    tmp_path: Path, ops_repo: Path
) -> None:
    env = "environments/development/environment.yaml"
    commit(
        ops_repo,
        env,
        "reconciler: {enabled: false, metricsPort: 19110}",
        "reconciler: {enabled: true, metricsPort: 19110, interval: 1m}",
    )
    rig = Rig(tmp_path / "root", ops_repo)
    rig.reconciler.options.self_unit = "atlas-reconciler.service"
    assert rig.reconciler.cycle().outcome == "applied"
    assert rig.host.runtime.units["atlas-reconciler.service"].running
    commit(ops_repo, env, "interval: 1m}", "interval: 2m}")
    rig.host.runtime.calls.clear()
    result = rig.reconciler.cycle()
    assert result.outcome == "applied", result.reason
    assert ("restart", "atlas-reconciler.service") in [
        (a.verb, a.target) for a in result.plan.actions
    ]
    assert ("restart", "atlas-reconciler.service") not in rig.host.runtime.calls
    assert rig.host.runtime.calls[-1] == ("restart-later", "atlas-reconciler.service")
    assert rig.host.store.journal_pending() == [], (
        "nothing is left to carry over into the restarted reconciler"
    )
    assert rig.host.store.last_applied("development").sha == result.revision


def test_a_run_outside_the_service_hands_over_to_it_instead_of_waiting_on_it(
    tmp_path: Path, ops_repo: Path
) -> None:
    """`atlas reconcile --once` bootstrapping atlas-reconciler.service: a blocking start
    would wait for a service that waits for the lock this run holds."""
    commit(
        ops_repo,
        "environments/development/environment.yaml",
        "reconciler: {enabled: false, metricsPort: 19110}",
        "reconciler: {enabled: true, metricsPort: 19110, interval: 1m}",
    )
    rig = Rig(tmp_path / "root", ops_repo)
    assert rig.reconciler.options.self_unit is None
    recorded_when_requested: list[str | None] = []
    request = rig.host.runtime.request

    def spy(verb: str, unit: str) -> None:
        last = rig.host.store.last_applied("development")
        recorded_when_requested.append(last.sha if last else None)
        request(verb, unit)

    rig.host.runtime.request = spy  # type: ignore[method-assign]
    result = rig.reconciler.cycle()
    assert result.outcome == "applied", result.reason
    calls = rig.host.runtime.calls
    assert ("start", "atlas-reconciler.service") not in calls
    assert calls[-1] == ("start-later", "atlas-reconciler.service")
    assert ("enable", "atlas-reconciler.service") in calls
    assert recorded_when_requested == [result.revision], "requested once the run is recorded"
    assert "atlas-reconciler.service" in rig.host.store.inventory().units


def test_the_cache_keeps_only_what_a_rollback_may_need(rig: Rig, ops_repo: Path) -> None:
    first = rig.reconciler.cycle().revision
    for hours in (2, 3):
        commit(ops_repo, "base/sources.yaml", f"interval: {hours - 1}h", f"interval: {hours}h")
        assert rig.reconciler.cycle().outcome == "applied"
    trees = lambda: sorted(p.name for p in rig.reconciler.cache.glob("*/trees/*"))  # noqa: E731
    assert len(trees()) == 3
    rig.reconciler._prune_cache(keep_revisions=1)
    assert trees() == [rig.host.store.last_applied("development").sha]
    # a pruned git revision is exported again from the mirror when a rollback needs it
    assert rig.reconciler.rollback(first[:12]).outcome == "rolled-back"
    assert first in trees()


def test_folder_snapshots_are_pruned_too(tmp_path: Path) -> None:
    from reconciler.source import checkout, prune_cache

    folder = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, folder)
    cache = tmp_path / "cache"
    a = checkout(str(folder), None, ".", cache, snapshot=True).revision.sha
    (folder / "base/extra.txt").write_text("x")
    b = checkout(str(folder), None, ".", cache, snapshot=True).revision.sha
    assert len(list((cache / "dirs").iterdir())) == 2
    assert prune_cache(cache, {b}) == 1
    assert [p.name for p in (cache / "dirs").iterdir()] == [b.removeprefix("dir:")]
    assert a != b


def test_carried_over_actions_skip_units_the_plan_launches_anyway() -> None:
    from pathlib import PurePosixPath

    from reconciler.actions import Plan, Restart, Start
    from reconciler.model import Revision
    from reconciler.plan import carried_over
    from reconciler.render.desired import Rendered, UnitSpec

    unit = UnitSpec(
        "atlas-core.service", PurePosixPath("/u/atlas-core.service"), "core", True, True
    )
    other = UnitSpec("atlas-api.service", PurePosixPath("/u/atlas-api.service"), "api", True, True)
    rendered = Rendered((), (), (unit, other))
    plan = Plan(
        "dev", Revision("x"), (Start("not running (failed)", "atlas-core.service", "core"),)
    )
    pending = [
        {"action": "restart", "target": "atlas-core.service"},
        {"action": "restart", "target": "atlas-api.service"},
        {"action": "daemon-reload", "target": ""},
    ]
    merged = carried_over(plan, pending, rendered)
    assert [(a.verb, a.target) for a in merged.actions] == [
        ("daemon-reload", ""),
        ("restart", "atlas-api.service"),
        ("start", "atlas-core.service"),
    ]
    assert isinstance(merged.actions[1], Restart)


def test_a_revision_that_changes_only_a_health_check_runs_it(rig: Rig, ops_repo: Path) -> None:
    """The new check restarts nothing, yet it is this revision's: a failing one fails it."""
    good = rig.reconciler.cycle().revision
    calls = len(rig.host.runtime.calls)
    rig.http.failing["http://127.0.0.1:18080/livez"] = 404
    bad = commit(ops_repo, "base/deployments.yaml", "path: /readyz", "path: /livez")
    result = rig.reconciler.cycle()
    assert result.outcome == "rolled-back", result.reason
    assert "health check http://127.0.0.1:18080/livez did not pass" in result.reason
    assert "HTTP 404" in result.reason
    assert not [c for c in rig.host.runtime.calls[calls:] if c[0] != "daemon-reload"]
    outcomes = [(r.sha, r.outcome) for r in rig.host.store.history("development")]
    assert (bad, "failed") in outcomes
    assert rig.host.store.last_applied("development").sha == good
    # a check that passes is a revision applied like any other
    fixed = commit(ops_repo, "base/deployments.yaml", "path: /livez", "path: /healthz")
    assert rig.reconciler.cycle().outcome == "synced"  # nothing to change, checks passed
    assert "http://127.0.0.1:18080/healthz" in rig.http.calls
    assert rig.host.store.last_applied("development").sha == fixed


def test_a_failed_unit_has_its_last_journal_lines_in_the_error(
    tmp_path: Path, ops_repo: Path, example_keys: dict[str, Path]
) -> None:
    ring = load_key_file(example_keys["production"])
    rig = Rig(
        tmp_path / "root", ops_repo, env="production", secrets=lambda env: KeyRingSecrets(ring)
    )
    assert rig.reconciler.cycle().outcome == "applied"
    leaked = example_values(example_keys)["production"]["smtp_password"]
    runtime = rig.host.runtime
    runtime.journals["atlas-core.service"] = [
        "starting atlas core",
        f"error: the content database refused password {leaked}",
    ]
    commit(ops_repo, "base/sources.yaml", "interval: 1h", "interval: 2h")
    runtime.failing.add("atlas-core.service")
    result = rig.reconciler.cycle()
    assert result.outcome == "failed", result.reason  # it fails in the old revision too
    want = "last journal lines of atlas-core.service: starting atlas core | error: the content database refused"
    assert want in result.reason
    assert leaked not in result.reason and "«hidden»" in result.reason
    history = rig.host.store.history("production")
    assert any(want in r.reason for r in history)
    events = rig.host.store.events()
    assert any(want in e.message for e in events)
    assert all(leaked not in r.reason for r in history)
    assert all(leaked not in e.message for e in events)
