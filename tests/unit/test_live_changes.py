"""What the live drift watcher counts as drift, and how it coalesces bursts."""

from __future__ import annotations

from pathlib import PurePosixPath

from reconciler.inventory import Inventory, InventoryFile, content_digest
from reconciler.observe import MISSING, ObservedFile
from reconciler.watch.changes import Burst, UnitSentry, file_drift, unit_down
from seams.systemd import UnitState
from seams.testing import FakeClock


def state(name: str, active: str, sub: str) -> UnitState:
    return UnitState(name, load_state="loaded", active_state=active, sub_state=sub)


UP = state("a.service", "active", "running")


def test_down_with_no_restart_pending_is_drift_restarting_is_not() -> None:
    assert unit_down(state("a", "inactive", "dead")) == "unit-stopped"
    assert unit_down(state("a", "failed", "failed")) == "unit-failed"
    assert unit_down(state("a", "activating", "auto-restart")) is None  # Restart= at work
    assert unit_down(state("a", "failed", "auto-restart")) is None
    for active, sub in [("active", "running"), ("activating", "start"), ("deactivating", "stop")]:
        assert unit_down(state("a", active, sub)) is None


def test_a_unit_stopped_by_hand_is_reported_once() -> None:
    sentry = UnitSentry()
    sentry.baseline(["a.service"], {"a.service": True})
    assert sentry.observe({"a.service": UP}) == []
    assert sentry.observe({"a.service": state("a.service", "deactivating", "stop-sigterm")}) == []
    [item] = sentry.observe({"a.service": state("a.service", "inactive", "dead")})
    assert (item.kind, item.target) == ("unit-stopped", "a.service")
    assert sentry.observe({"a.service": state("a.service", "inactive", "dead")}) == []


def test_a_crash_restarted_by_systemd_is_not_drift() -> None:
    sentry = UnitSentry()
    sentry.baseline(["a.service"], {"a.service": True})
    for active, sub in [
        ("deactivating", "stop-sigterm"),
        ("activating", "auto-restart"),
        ("activating", "start"),
        ("active", "running"),
    ]:
        assert sentry.observe({"a.service": state("a.service", active, sub)}) == []
    # ... until systemd gives up (start limit hit): then no restart is pending
    [item] = sentry.observe({"a.service": state("a.service", "failed", "failed")})
    assert item.kind == "unit-failed"


def test_a_unit_down_at_the_baseline_or_suspended_is_not_reported() -> None:
    sentry = UnitSentry()
    names = ["a.service", "b.service", "c.service"]
    sentry.baseline(names, {"a.service": False, "b.service": True})  # a: the heal failed
    down = {
        "a.service": state("a.service", "failed", "failed"),
        "b.service": state("b.service", "inactive", "dead"),
        "c.service": state("c.service", "inactive", "dead"),  # not in the baseline: learned
    }
    assert sentry.observe(down, suspended=lambda unit: unit == "b.service") == []
    sentry.observe(dict.fromkeys(down, UP))
    assert [i.target for i in sentry.observe(down)] == ["a.service", "b.service", "c.service"]


def test_a_burst_is_due_after_its_last_event_settles() -> None:
    clock = FakeClock()
    burst = Burst(window=0.25, longest=2.0)
    assert burst.remaining(clock.monotonic()) is None and not burst.due(clock.monotonic())
    path = PurePosixPath("/u/a.service")
    for _ in range(3):  # write, rename, chmod
        burst.touched([path], clock.monotonic())
        clock.advance(0.1)
        assert not burst.due(clock.monotonic())
    clock.advance(0.15)
    assert burst.due(clock.monotonic())
    paths, units = burst.take()
    assert paths == {path} and units == []
    assert not burst.due(clock.monotonic())


def test_a_burst_that_never_goes_quiet_is_due_after_the_longest_wait() -> None:
    clock = FakeClock()
    burst = Burst(window=0.25, longest=2.0)
    for _ in range(19):
        burst.touched([PurePosixPath("/u/a.service")], clock.monotonic())
        clock.advance(0.1)
        assert not burst.due(clock.monotonic())
    clock.advance(0.1)
    assert burst.due(clock.monotonic())


def test_units_and_files_go_into_one_burst() -> None:
    clock = FakeClock()
    burst = Burst(window=0.25)
    burst.went_down([], clock.monotonic())
    assert burst.remaining(clock.monotonic()) is None  # nothing went down: no burst
    sentry = UnitSentry()
    sentry.baseline(["a.service"], {"a.service": True})
    burst.went_down(
        sentry.observe({"a.service": state("a", "inactive", "dead")}), clock.monotonic()
    )
    clock.advance(0.2)
    burst.touched([PurePosixPath("/u/a.service")], clock.monotonic())
    clock.advance(0.25)
    paths, units = burst.take()
    assert len(paths) == 1 and [u.kind for u in units] == ["unit-stopped"]


def test_only_inventory_files_that_differ_are_drift() -> None:
    key = b"k" * 32
    unit, env = PurePosixPath("/u/a.service"), PurePosixPath("/c/a.env")
    inventory = Inventory(
        files={
            unit: InventoryFile(unit, content_digest(b"[Unit]\n", "unit", key), 0o644, "unit", "a"),
            env: InventoryFile(env, content_digest(b"X=1\n", "env", key), 0o600, "env", "a"),
        }
    )
    on_host = {unit: ObservedFile(b"[Unit]\n", 0o644), env: ObservedFile(b"X=1\n", 0o600)}
    read = lambda p: on_host.get(p, MISSING)  # noqa: E731
    swap = PurePosixPath("/u/.a.service.swp")
    assert file_drift(inventory, [unit, env, swap], read, key) == []  # Atlas's own write
    on_host[unit] = ObservedFile(b"[Unit]\n# edited\n", 0o644)
    on_host[env] = ObservedFile(b"X=1\n", 0o644)
    kinds = {(i.kind, i.target) for i in file_drift(inventory, [unit, env, swap], read, key)}
    assert kinds == {("file-modified", str(unit)), ("file-mode", str(env))}
    del on_host[unit]
    assert [i.kind for i in file_drift(inventory, [unit], read, key)] == ["file-missing"]
    assert file_drift(inventory, [swap], read, key) == []


def test_a_unit_stopped_while_a_cycle_ran_is_still_caught() -> None:
    sentry = UnitSentry()
    sentry.baseline(["a.service", "b.service"], {"a.service": True, "b.service": True})
    sentry.observe({"a.service": UP, "b.service": state("b", "inactive", "dead")})  # reported
    # the cycle ran (healing b, while a was stopped by hand); it saw a down, b up
    sentry.baseline(["a.service", "b.service"], {"a.service": False, "b.service": True})
    down = sentry.observe(
        {"a.service": state("a", "inactive", "dead"), "b.service": state("b", "failed", "failed")}
    )
    assert [i.target for i in down] == ["a.service"]  # b's heal failed: not reported again
    sentry.baseline(["b.service"], {})  # a left the inventory
    assert sentry.up == {"b.service": False}
