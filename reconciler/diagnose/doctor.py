"""``atlas doctor``: gather every fact, judge it, in the order an operator reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.diagnose import checks
from reconciler.diagnose.gather import (
    JOURNAL_LINES,
    Probes,
    database_facts,
    disk_facts,
    key_facts,
    repo_facts,
)
from reconciler.drift import DriftItem
from reconciler.errors import ReconcilerError
from reconciler.host.paths import HostLayout
from reconciler.inventory import Inventory
from reconciler.state import StateStore
from reconciler.status import facts as sync_facts
from reconciler.status import observe_host, sync_status
from seams.systemd import UnitState

SELF_UNIT = "atlas-reconciler.service"
States = dict[str, UnitState] | None  # None: the manager cannot be asked


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[checks.Finding, ...]

    @property
    def problems(self) -> int:
        return sum(1 for f in self.findings if f.problem)

    def as_dict(self) -> dict[str, object]:
        return {"problems": self.problems, "findings": [f.as_dict() for f in self.findings]}


def _strays(layout: HostLayout, inventory: Inventory) -> list[str]:
    folder = layout.on_disk(layout.unit_dir)
    known = {u.name for u in inventory.units.values()}
    try:
        names = sorted(p.name for p in folder.glob("atlas-*.service"))
    except OSError:
        return []
    return [str(layout.unit_dir / n) for n in names if n not in known]


def _drift(layout: HostLayout, store: StateStore, probes: Probes) -> list[DriftItem]:
    try:
        return observe_host(layout, store, probes.runtime)[1]
    except ReconcilerError:
        return observe_host(layout, store, None)[1]


def _inventory(layout: HostLayout, store: StateStore, drift: list[DriftItem]) -> checks.Finding:
    return checks.inventory(
        checks.InventoryFacts(
            [(d.target, d.kind) for d in drift], _strays(layout, store.inventory())
        )
    )


def _states(store: StateStore, probes: Probes) -> States:
    if probes.runtime is None:
        return None
    try:
        return probes.runtime.unit_states(sorted(store.inventory().units))
    except ReconcilerError:
        return None


def _units(
    store: StateStore, probes: Probes, states: dict[str, UnitState] | None
) -> checks.Finding:
    if states is None or probes.runtime is None:
        return checks.units([], reachable=False)
    facts = []
    for name, unit in sorted(store.inventory().units.items()):
        s = states[name]
        down = s.active_state == "failed" or (unit.start and s.active_state != "active")
        journal = probes.runtime.journal_tail(name, JOURNAL_LINES) if down else []
        facts.append(checks.UnitFacts(name, s.active_state, s.sub_state, unit.start, journal))
    return checks.units(facts, reachable=True)


def _ports(
    store: StateStore, probes: Probes, states: dict[str, UnitState] | None
) -> checks.Finding:
    by_port: dict[int, list[str]] = {}
    for name, unit in sorted(store.inventory().units.items()):
        port = urlsplit(unit.probe).port if unit.probe else None
        if port:
            by_port.setdefault(port, []).append(name)
    listeners = probes.listeners() if by_port else {}
    facts = []
    for port, names in sorted(by_port.items()):
        ours: frozenset[int] = frozenset()
        for name in names:
            pid = states[name].main_pid if states and name in states else 0
            ours |= probes.process_tree(pid)
        facts.append(checks.PortFacts(port, names, listeners.get(port, {}), ours))
    return checks.ports(facts)


def _reconciler(
    store: StateStore, states: States, env: str | None, drifted: bool, now: float
) -> checks.Finding:
    last = store.last_attempt(env) if env else None
    unit = SELF_UNIT if SELF_UNIT in store.inventory().units else None
    active = None
    if unit is not None and states is not None:
        active = states[unit].active_state == "active"
    status = sync_status(sync_facts(store, env, drift=drifted))
    return checks.reconciler(
        checks.ReconcilerFacts(
            reconciled=True,
            sync=str(status),
            last_finished_at=last.finished_at if last else None,
            unit=unit,
            unit_active=active,
            fetch_error=store.fetch_error(),
        ),
        now,
    )


def diagnose(
    layout: HostLayout,
    store: StateStore | None,
    probes: Probes,
    *,
    key_files: Sequence[tuple[Path, bool]],
    backups: checks.BackupFacts,
    now: float,
    unreadable: str = "",
) -> Diagnosis:
    """Every check, in order: the manager, what Atlas wrote and runs, its data, the host.
    ``unreadable``: why the state database (then ``store`` None) cannot be read."""
    out = [checks.manager(probes.manager)]
    if store is None:
        facts = checks.ReconcilerFacts(reconciled=False, unreadable=unreadable)
        out.append(checks.reconciler(facts, now))
        target: dict[str, str | None] = {}
    else:
        target = store.target()
        states = _states(store, probes)
        drift = _drift(layout, store, probes)
        out += [
            _inventory(layout, store, drift),
            _units(store, probes, states),
            _reconciler(store, states, target.get("environment"), bool(drift), now),
            _ports(store, probes, states),
        ]
    out += [
        checks.key_files(key_facts(key_files)),
        checks.repository(repo_facts(target, probes.ls_remote)),
        checks.database(database_facts(layout)),
        checks.disk(disk_facts(layout)),
        checks.backups(backups, now),
        checks.clock(probes.clock_synchronised()),
    ]
    return Diagnosis(tuple(out))
