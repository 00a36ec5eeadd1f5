"""The judges of ``atlas doctor``: gathered facts in, one ``Finding`` per check out.

Pure functions of the facts (and ``now``), so every check is tested on a fact that
passes and one that fails without a host. A ``Finding`` is ``ok``, a ``problem`` (with
the fix) or ``unknown`` (the fact could not be read here: not counted as a problem).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["ok", "problem", "unknown"]

STALE_SYNC_S = 3600.0  # the reconciler should have finished a cycle within this
MIN_FREE_RATIO = 0.10
MIN_FREE_BYTES = 1 << 30


@dataclass(frozen=True)
class Finding:
    check: str
    verdict: Verdict
    message: str
    fix: str = ""
    details: tuple[str, ...] = ()

    @property
    def problem(self) -> bool:
        return self.verdict == "problem"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["details"] = list(self.details)
        return out


def ok(check: str, message: str) -> Finding:
    return Finding(check, "ok", message)


def problem(check: str, message: str, fix: str, details: Sequence[str] = ()) -> Finding:
    return Finding(check, "problem", message, fix, tuple(details))


def unknown(check: str, message: str) -> Finding:
    return Finding(check, "unknown", message)


@dataclass(frozen=True)
class ManagerFacts:
    scope: str
    state: str | None  # SystemState; None: unreachable
    version: str | None = None
    error: str = ""
    asked: bool = True  # False: another --root than this host's, whose manager is not its


def manager(f: ManagerFacts) -> Finding:
    if not f.asked:
        return unknown("manager", f"systemd manager not asked: {f.error}")
    if f.state is None:
        fix = (
            "start a user manager (loginctl enable-linger $USER) and set XDG_RUNTIME_DIR"
            if f.scope == "user"
            else "run on a host booted with systemd, as root"
        )
        return problem("manager", f"systemd manager ({f.scope}) unreachable: {f.error}", fix)
    version = f" version {f.version}" if f.version else ""
    if f.state not in ("running", "degraded"):
        return problem(
            "manager",
            f"systemd manager ({f.scope}){version} is {f.state}",
            "wait for it to finish starting, or see `systemctl list-jobs`",
        )
    return ok("manager", f"systemd manager ({f.scope}){version} is {f.state}")


@dataclass(frozen=True)
class InventoryFacts:
    drift: Sequence[tuple[str, str]]  # (resource, what differs)
    strays: Sequence[str]  # Atlas-looking unit files Atlas did not write


def inventory(f: InventoryFacts) -> Finding:
    if not f.drift and not f.strays:
        return ok("inventory", "unit files and config agree with Atlas's inventory")
    details = [f"{what}: {resource}" for resource, what in f.drift]
    details += [f"not in the inventory: {path}" for path in f.strays]
    return problem(
        "inventory",
        f"{len(f.drift)} resource(s) differ from what Atlas wrote, "
        f"{len(f.strays)} unknown unit file(s)",
        "run `atlas reconcile --once` to restore them; remove unit files Atlas did not write",
        details,
    )


@dataclass(frozen=True)
class UnitFacts:
    name: str
    active: str
    sub: str
    expected_running: bool
    journal: Sequence[str] = field(default_factory=tuple)


def units(facts: Sequence[UnitFacts], reachable: bool) -> Finding:
    if not reachable:
        return unknown("units", "unit states unknown: the manager cannot be asked")
    failing = [
        u for u in facts if u.active == "failed" or (u.expected_running and u.active != "active")
    ]
    if not failing:
        return ok("units", f"{len(facts)} unit(s) as expected")
    details: list[str] = []
    for u in failing:
        details.append(f"{u.name}: {u.active} ({u.sub})")
        details += [f"  {line}" for line in u.journal]
    names = " ".join(u.name for u in failing)
    return problem(
        "units",
        f"{len(failing)} unit(s) not running: {names}",
        "read the journal lines below, fix the cause, then `atlas reconcile --once`",
        details,
    )


@dataclass(frozen=True)
class KeyFacts:
    path: str
    exists: bool
    mode_error: str = ""  # why its mode is unsafe ("" when safe)
    required: bool = False  # named explicitly, or the host key


def key_files(facts: Sequence[KeyFacts]) -> Finding:
    bad = [k for k in facts if k.exists and k.mode_error]
    missing = [k for k in facts if k.required and not k.exists]
    if not bad and not missing:
        present = [k.path for k in facts if k.exists]
        return ok("keys", f"key files safe (mode 0600): {', '.join(present) or 'none present'}")
    details = [k.mode_error for k in bad] + [f"{k.path} does not exist" for k in missing]
    fix = f"chmod 600 {bad[0].path}" if bad else "create it: `atlas secrets init --env ENV`"
    return problem("keys", f"{len(bad) + len(missing)} key file problem(s)", fix, details)


@dataclass(frozen=True)
class RepoFacts:
    repo: str | None  # shown with any credentials removed
    ref: str | None
    reachable: bool = False
    resolved: str | None = None  # the SHA the ref names; None: not found
    error: str = ""


def repository(f: RepoFacts) -> Finding:
    if f.repo is None:
        return unknown("repository", "no repository yet: nothing was reconciled on this host")
    ref = f.ref or "HEAD"
    if not f.reachable:
        return problem(
            "repository",
            f"repository {f.repo} unreachable: {f.error}",
            "check the URL, the network and the deploy key of this host",
        )
    if f.resolved is None:
        return problem(
            "repository",
            f"{f.repo} has no branch or tag {ref!r}",
            "push the branch, or reconcile with --ref naming one that exists",
        )
    return ok("repository", f"{f.repo} reachable; {ref} is {f.resolved[:12]}")


@dataclass(frozen=True)
class DatabaseFacts:
    path: str | None  # None: no content database is configured on this host
    exists: bool = False
    size: int = 0
    integrity: Sequence[str] = ()  # PRAGMA integrity_check's lines
    error: str = ""


def database(f: DatabaseFacts) -> Finding:
    if f.path is None:
        return unknown("database", "no content database configured (no core.json)")
    if not f.exists:
        return problem(
            "database",
            f"content database {f.path} does not exist",
            "start atlas-core (it creates and migrates the database)",
        )
    if f.error:
        return problem(
            "database", f"content database {f.path} cannot be read: {f.error}", _restore_fix()
        )
    if list(f.integrity) != ["ok"]:
        return problem(
            "database",
            f"content database {f.path} fails integrity_check",
            _restore_fix(),
            list(f.integrity)[:10],
        )
    return ok("database", f"content database {f.path}: integrity ok, {_size(f.size)}")


def _restore_fix() -> str:
    return "restore the newest verified backup: `atlas backup restore` (units are stopped first)"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


@dataclass(frozen=True)
class DiskFacts:
    path: str
    total: int
    free: int


def disk(f: DiskFacts | None) -> Finding:
    if f is None:
        return unknown("disk", "the data folder does not exist yet")
    ratio = f.free / f.total if f.total else 0.0
    message = f"{_size(f.free)} free of {_size(f.total)} ({ratio:.0%}) at {f.path}"
    if ratio < MIN_FREE_RATIO or f.free < MIN_FREE_BYTES:
        return problem(
            "disk",
            message,
            "free space (old backups, logs) or grow the file system: SQLite stops when it is full",
        )
    return ok("disk", message)


def clock(synchronised: bool | None) -> Finding:
    if synchronised is None:
        return unknown("clock", "clock synchronisation unknown (no timedatectl answer)")
    if not synchronised:
        return problem(
            "clock",
            "the clock is not synchronised (NTPSynchronized=no)",
            "enable time sync: `timedatectl set-ntp true` (systemd-timesyncd or chrony)",
        )
    return ok("clock", "the clock is synchronised (NTP)")


@dataclass(frozen=True)
class BackupFacts:
    destination: str | None  # None: no BackupPolicy
    newest_at: float | None = None  # the newest finished backup (None: none)
    max_age_s: float = 26 * 3600.0


def backups(f: BackupFacts, now: float) -> Finding:
    if f.destination is None:
        return unknown("backups", "no BackupPolicy: the content database is not backed up")
    if f.newest_at is None:
        return problem(
            "backups",
            f"no backup in {f.destination}",
            "run the backup job now (start atlas-services.service), then read its journal",
        )
    age = now - f.newest_at
    if age > f.max_age_s:
        return problem(
            "backups",
            f"newest backup in {f.destination} is {age / 3600:.1f} h old",
            "check that atlas-services.timer is active, and the backup job's journal",
        )
    return ok("backups", f"newest backup is {age / 3600:.1f} h old")


@dataclass(frozen=True)
class ReconcilerFacts:
    reconciled: bool  # a state database exists
    sync: str = ""  # Synced | OutOfSync | Failed
    last_finished_at: float | None = None
    unit: str | None = None  # atlas-reconciler.service when Atlas runs itself
    unit_active: bool | None = None
    fetch_error: str | None = None
    unreadable: str = ""  # why the state database cannot be read ("" when it can)


def reconciler(f: ReconcilerFacts, now: float) -> Finding:
    if f.unreadable:
        return problem(
            "reconciler",
            f"the state database cannot be read: {f.unreadable}",
            "restore it from a copy, or move it aside and run `atlas reconcile --once` "
            "(a new history; files of the old inventory are then not removed)",
        )
    if not f.reconciled:
        return problem(
            "reconciler", "nothing was reconciled on this host", "run `atlas reconcile --once`"
        )
    if f.unit is not None and f.unit_active is False:
        return problem(
            "reconciler", f"{f.unit} is not running", f"systemctl start {f.unit}; see its journal"
        )
    if f.last_finished_at is None or now - f.last_finished_at > STALE_SYNC_S:
        ago = (
            "never"
            if f.last_finished_at is None
            else f"{(now - f.last_finished_at) / 60:.0f} min ago"
        )
        return problem(
            "reconciler",
            f"last reconcile finished {ago}",
            "run `atlas reconcile --watch` (spec.reconciler.enabled) so it keeps the host in sync",
        )
    if f.sync != "Synced":
        reason = f": {f.fetch_error}" if f.fetch_error else ""
        return problem(
            "reconciler", f"sync status {f.sync}{reason}", "see `atlas status` and `atlas history`"
        )
    running = f"{f.unit} running, " if f.unit else ""
    return ok("reconciler", f"{running}Synced, last cycle {(now - f.last_finished_at):.0f} s ago")


@dataclass(frozen=True)
class PortFacts:
    port: int
    units: Sequence[str]  # the units meant to listen there
    owners: Mapping[int, str]  # pid → process name of each listener (pid 0: unknown)
    ours: frozenset[int]  # the pids of those units and their children


def ports(facts: Sequence[PortFacts]) -> Finding:
    taken: list[str] = []
    for p in facts:
        where = f"port {p.port} of {', '.join(p.units)}"
        known = {pid: name for pid, name in p.owners.items() if pid and pid not in p.ours}
        if known:
            who = ", ".join(f"{name} (pid {pid})" for pid, name in sorted(known.items()))
            taken.append(f"{where} is held by {who}")
        elif 0 in p.owners and not p.ours:  # a listener we may not name, and none of ours
            taken.append(f"{where} is held by another process")
    if not taken:
        return ok("ports", f"{len(facts)} port(s) free or held by their own units")
    return problem(
        "ports",
        f"{len(taken)} port(s) in use by something else",
        "stop that process, or move the component to another port in its Deployment",
        taken,
    )
