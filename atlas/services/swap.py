"""Restoring a point of the backups over the live database, atomically.

The chain is rebuilt and checked in a scratch file beside the database first; only
then are the units that use the database stopped. The old database is folded
(WAL checkpoint) and kept aside as ``<name>.replaced-<time>`` (a hard link, so the
database path always names a whole file: the old one or the new one), and the
rebuilt file is renamed over it. The units are started again whatever happened.
A failure before the swap changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.services import catalog, checks
from atlas.services.catalog import Entry
from atlas.services.units import UnitControl
from seams.fsio import fsync_dir


@dataclass(frozen=True)
class Restore:
    point: str
    created: float
    chain: tuple[str, ...]
    target: Path
    aside: Path | None
    units: tuple[str, ...]
    done: bool
    schema_version: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "at": catalog.iso(self.created),
            "chain": list(self.chain),
            "target": str(self.target),
            "keptAside": str(self.aside) if self.aside else None,
            "units": list(self.units),
            "restored": self.done,
            "schemaVersion": self.schema_version,
        }


def _aside_name(target: Path, now: float) -> Path:
    stamp = catalog.new_id(now, "full").removeprefix("atlas-").removesuffix("-full")
    return target.with_name(f"{target.name}.replaced-{stamp}")


def plan(target: Path, point: Entry, units: UnitControl, now: float) -> Restore:
    aside = _aside_name(target, now) if target.exists() else None
    m = point.manifest
    active = tuple(units.active())
    return Restore(m.id, m.created, point.chain, target, aside, active, False, m.schema_version)


def _fold_wal(target: Path, aside: Path) -> None:
    """Checkpoint the old database's WAL into it; if that fails, keep the WAL aside."""
    wal = Path(f"{target}-wal")
    try:
        conn = sqlite3.connect(target, timeout=5.0)
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        busy = 1
    if busy and wal.exists():
        os.replace(wal, Path(f"{aside}-wal"))


def _swap(scratch: Path, target: Path, aside: Path | None) -> None:
    if aside is not None:
        st = target.stat()
        _fold_wal(target, aside)
        os.link(target, aside)
        with contextlib.suppress(PermissionError):
            os.chown(scratch, st.st_uid, st.st_gid)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(scratch, target)
    fsync_dir(target.parent)


def restore(
    dest: Path,
    entries: Sequence[Entry],
    point: Entry,
    target: Path,
    passphrase: str | None,
    units: UnitControl,
    now: float,
) -> Restore:
    chosen = plan(target, catalog.usable(point), units, now)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.restoring")
    scratch.unlink(missing_ok=True)
    try:
        checks.rebuild_checked(dest, catalog.chain_manifests(entries, point), scratch, passphrase)
        units.stop(chosen.units)
        try:
            _swap(scratch, target, chosen.aside)
        finally:
            units.start(chosen.units)
    finally:
        scratch.unlink(missing_ok=True)
    return Restore(**{**chosen.__dict__, "done": True})
