"""Status: how the host stands against what git says.

``sync_status`` is the one rule, used for ``atlas status`` and for the
``atlas_sync_info`` metric alike:

* **Failed** — the latest attempt at the desired revision failed verification or was
  invalid: it will not be applied until a new commit arrives;
* **OutOfSync** — nothing applied yet, another revision applied (a rollback by hand,
  a revision still to come), drift left uncorrected, or the last fetch failed (what
  git says now is unknown);
* **Synced** — otherwise.

``facts`` reads what the rule needs from the state database; the caller adds drift
(the loop: what it left uncorrected; ``atlas status``: what it sees on the host now).
``report`` is everything ``atlas status`` shows, as data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from reconciler.drift import DriftItem, detect
from reconciler.errors import ReconcilerError
from reconciler.host.paths import HostLayout
from reconciler.host.probe import HttpProbe
from reconciler.host.runtime import Runtime
from reconciler.inventory import InventoryUnit
from reconciler.observe import Observed, observe
from reconciler.outcomes import SyncStatus
from reconciler.render.desired import NOTHING
from reconciler.state import StateStore
from seams.systemd import UnitState


@dataclass(frozen=True)
class SyncFacts:
    desired: str | None  # the revision the last fetch found
    applied: str | None  # the last revision applied and verified
    desired_broken: bool  # the latest attempt at the desired revision failed or was invalid
    drift: bool  # the host differs from what was applied, uncorrected
    fetch_failed: bool  # the last fetch failed


def sync_status(f: SyncFacts) -> SyncStatus:
    if f.desired_broken:
        return SyncStatus.FAILED
    if f.applied is None or f.desired != f.applied or f.drift or f.fetch_failed:
        return SyncStatus.OUT_OF_SYNC
    return SyncStatus.SYNCED


def facts(store: StateStore, env: str | None, *, drift: bool) -> SyncFacts:
    desired = (store.desired() or {}).get("sha")
    applied = store.last_applied(env) if env else None
    latest = store.latest_attempt_of(env, desired) if env and desired else None
    return SyncFacts(
        desired=desired,
        applied=applied.sha if applied else None,
        desired_broken=latest is not None and latest.outcome.broken,
        drift=drift,
        fetch_failed=store.fetch_error() is not None,
    )


def observe_host(
    layout: HostLayout, store: StateStore, runtime: Runtime | None
) -> tuple[Observed, list[DriftItem]]:
    """The host as ``atlas status`` shows it: what the inventory lists, and its drift."""
    inventory = store.inventory()
    observed = observe(layout, NOTHING, inventory, runtime)
    return observed, detect(inventory, observed, store.host_key)


@dataclass(frozen=True)
class UnitReport:
    unit: str
    component: str
    active: str
    sub: str
    enabled: bool
    pid: int
    restarts: int
    expected_running: bool
    healthy: bool
    health: dict[str, Any] | None


def _unit_report(unit: InventoryUnit, state: UnitState, probe: HttpProbe) -> UnitReport:
    health: dict[str, Any] | None = None
    if unit.probe and state.running:
        try:
            code = probe.status(unit.probe, 2.0)
            health = {"url": unit.probe, "status": code, "ok": 200 <= code < 300}
        except OSError as exc:
            health = {"url": unit.probe, "status": None, "ok": False, "error": str(exc)[:200]}
    return UnitReport(
        unit=unit.name,
        component=unit.component,
        active=state.active_state,
        sub=state.sub_state,
        enabled=state.enabled,
        pid=state.main_pid,
        restarts=state.n_restarts,
        expected_running=unit.start,
        healthy=(state.running or not unit.start) and (health is None or health["ok"]),
        health=health,
    )


@dataclass(frozen=True)
class StatusReport:
    environment: str | None
    scope: str
    sync: SyncStatus
    desired_revision: dict[str, str] | None
    applied_revision: dict[str, Any] | None
    last_attempt: dict[str, Any] | None
    last_fetch_error: str | None
    drift: list[dict[str, str]]
    manager_reachable: bool
    units: list[UnitReport]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(
    layout: HostLayout, store: StateStore, env: str | None, runtime: Runtime, probe: HttpProbe
) -> StatusReport:
    """What ``atlas status`` shows: revisions, sync status, drift, units and their health."""
    env = env or store.target().get("environment")
    applied = store.last_applied(env) if env else None
    attempt = store.last_attempt(env) if env else None
    try:
        observed, drift = observe_host(layout, store, runtime)
        manager = True
    except ReconcilerError:
        observed, drift = observe_host(layout, store, None)
        manager = False
    units = [
        _unit_report(unit, observed.unit(name), probe)
        for name, unit in sorted(store.inventory().units.items())
    ]
    return StatusReport(
        environment=env,
        scope=layout.scope,
        sync=sync_status(facts(store, env, drift=bool(drift))),
        desired_revision=store.desired(),
        applied_revision=applied.as_dict() if applied else None,
        last_attempt=attempt.as_dict() if attempt else None,
        last_fetch_error=store.fetch_error(),
        drift=[d.as_dict() for d in drift],
        manager_reachable=manager,
        units=units,
    )
