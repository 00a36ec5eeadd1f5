"""What the ``atlas backup`` verbs and the services job do with page backups, given
the policy: create (with the policy's encryption), verify (one, or all), restore
(a backup or the newest point at or before a time), prune and drill. Each records
its outcome in the destination's status (``checks.record``) so the metrics follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from atlas.errors import BackupError
from atlas.services import capture, catalog, checks, retention, swap
from atlas.services.catalog import Entry, Manifest
from atlas.services.settings import BackupSettings
from atlas.services.units import UnitControl


@dataclass(frozen=True)
class Target:
    """Where backups go and the passphrase from the environment, per the policy."""

    policy: BackupSettings
    destination: Path
    passphrase: str | None

    @classmethod
    def of(
        cls,
        policy: BackupSettings,
        destination: Path,
        env: Mapping[str, str],
        variable: str | None = None,
    ) -> Target:
        name = variable or policy.encryption_key_env
        return cls(policy, destination, env.get(name) if name else None)

    def sealing_passphrase(self) -> str | None:
        """The passphrase new backups are sealed with (None: the policy does not encrypt)."""
        if not self.policy.encrypt:
            return None
        if not self.passphrase:
            raise BackupError(
                f"backup policy {self.policy.policy} encrypts, but the passphrase variable "
                f"{self.policy.encryption_key_env or '(none configured)'} is not set"
            )
        return self.passphrase


def create(
    t: Target, database: Path, kind: str, now: float, busy_timeout_s: float = 10.0
) -> Manifest:
    made = capture.create(
        capture.Request(database, t.destination, kind, now, t.sealing_passphrase(), busy_timeout_s)
    )
    checks.record(t.destination, now=now, made=made)
    return made


def verify(t: Target, backup_id: str | None, now: float) -> list[checks.Verdict]:
    """Verify ``backup_id`` (None: every backup); recorded in the status."""
    entries = catalog.catalog(t.destination)
    chosen = [catalog.find(entries, backup_id)] if backup_id else entries
    if not chosen:
        raise BackupError(f"{t.destination}: no backups to verify")
    verdicts = checks.verify(t.destination, entries, chosen, t.passphrase)
    newest = next((e for e in reversed(entries) if e.usable), None)
    restorable = [v for v in verdicts if newest and v.id == newest.manifest.id and v.ok]
    failures = [v for v in verdicts if not v.ok]
    checks.record(t.destination, now=now, verified=failures or restorable)
    return verdicts


def point(t: Target, backup_id: str | None, at: float | None) -> tuple[list[Entry], Entry]:
    entries = catalog.catalog(t.destination)
    if backup_id is not None:
        return entries, catalog.usable(catalog.find(entries, backup_id))
    if at is not None:
        return entries, catalog.point_at(entries, at)
    raise BackupError("restore: say which point: a backup ID or --at TIME")


def restore(
    t: Target,
    chosen: tuple[list[Entry], Entry],
    target: Path,
    units: UnitControl,
    now: float,
    dry_run: bool = False,
) -> swap.Restore:
    entries, entry = chosen
    if dry_run:
        return swap.plan(target, entry, units, now)
    return swap.restore(t.destination, entries, entry, target, t.passphrase, units, now)


def prune(t: Target, now: float) -> list[str]:
    return retention.prune(t.destination, t.policy.keep_last, t.policy.max_age_s, now)


def kind_due(entries: list[Entry], full_every_s: float, now: float) -> str:
    """full when the policy says every backup is, or the newest full one is too old."""
    fulls = [e for e in entries if e.usable and e.manifest.kind == "full"]
    if full_every_s <= 0 or not fulls or now - fulls[-1].manifest.created >= full_every_s:
        return "full"
    return "incremental"


def drill_due(t: Target, now: float) -> bool:
    every = t.policy.drill_every_s
    if every is None:
        return False
    last = checks.load_status(t.destination).get("lastDrill")
    return last is None or now - float(last) >= every


def scheduled(t: Target, database: Path, now: float, busy_timeout_s: float) -> dict[str, object]:
    """The services job: a backup of the kind due, its verification, retention, a drill."""
    kind = kind_due(catalog.catalog(t.destination), t.policy.full_every_s, now)
    made = create(t, database, kind, now, busy_timeout_s)
    out: dict[str, object] = {"id": made.id, "kind": made.kind, "bytes": made.payload_bytes}
    if t.policy.verify:
        (verdict,) = verify(t, made.id, now)
        if not verdict.ok:
            raise BackupError(f"the new backup failed verification: {verdict.problem}")
        out["verified"] = True
    out["removed"] = prune(t, now)
    if drill_due(t, now):
        verdict = checks.drill(t.destination, t.passphrase, now)
        out["drill"] = verdict.as_dict()
        if not verdict.ok:
            raise BackupError(f"the restore drill failed: {verdict.problem}")
    return out
