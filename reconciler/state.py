"""The reconciler's state database (SQLite, WAL): revisions, inventory, journal, events.

* ``revisions`` — every attempted revision: when, the outcome (applying, applied,
  failed, invalid, rolled-back), and why. The last ``applied`` one is what a
  rollback returns to; a ``failed`` or ``invalid`` SHA is not retried.
* ``inventory_files`` / ``inventory_units`` — what Atlas created on this host (with
  keyed secret digests for env files, never values).
* ``journal`` — the actions of the run in progress, written before they run, so a
  reconcile killed at any point is finished by the next one.
* ``events`` — a log of what happened, for ``atlas history`` and ``atlas status``.
* ``meta`` — small facts: the desired revision, the last fetch error, and each
  Deployment's rollout (``rollout:<name>``: phase, versions, analysis, result).

Secret values never reach this database, nor plain hashes of them: actions are
journaled by target (and sha256 for non-secret files), and env files are listed with
HMACs under the host's own key (``host.key`` beside the database, mode 0600) and the
keyed digests of their secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.inventory import Inventory, InventoryFile, InventoryUnit
from reconciler.model import Revision
from reconciler.outcomes import RevisionOutcome
from reconciler.statedb import Guarded, StateError, check_file, damaged, loads

__all__ = ["SCHEMA_VERSION", "Event", "RevisionRecord", "StateError", "StateStore", "state_path"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY,
    environment TEXT NOT NULL,
    sha TEXT NOT NULL,
    ref TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    trigger TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actions INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS revisions_env ON revisions (environment, id);
CREATE TABLE IF NOT EXISTS inventory_files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    mode INTEGER NOT NULL,
    kind TEXT NOT NULL,
    component TEXT NOT NULL,
    secret_digests TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS inventory_units (
    name TEXT PRIMARY KEY,
    component TEXT NOT NULL,
    file TEXT NOT NULL,
    start INTEGER NOT NULL,
    enable INTEGER NOT NULL,
    probe TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    sha TEXT NOT NULL DEFAULT ''
);
"""

_HEALTHY = tuple(o.value for o in RevisionOutcome if o.healthy)


@dataclass(frozen=True)
class RevisionRecord:
    id: int
    environment: str
    sha: str
    ref: str
    origin: str
    subject: str
    trigger: str
    started_at: float
    finished_at: float | None
    outcome: RevisionOutcome
    reason: str
    actions: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", RevisionOutcome(self.outcome))

    @property
    def revision(self) -> Revision:
        return Revision(self.sha, self.ref, self.origin, self.subject)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    level: str
    kind: str
    message: str
    sha: str

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class StateStore:
    def __init__(
        self, path: Path, clock: Callable[[], float] = time.time, readonly: bool = False
    ) -> None:
        self.path = path
        self.clock = clock
        self._host_key: bytes | None = None
        check_file(path)
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            raw = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {path}: {exc}") from exc
        self.db = Guarded(raw, path)
        try:
            self._prepare(readonly)
        except BaseException:
            self.db.close()
            raise

    def _prepare(self, readonly: bool) -> None:
        if readonly:  # no schema upkeep, no writes; no leftover -wal/-shm files either
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.execute("PRAGMA query_only=ON")
            return
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=30000")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(f"{self.path} was written by a newer Atlas (schema {version})")
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def host_key(self) -> bytes:
        """This host's own key for keyed digests of env files (created once, mode 0600)."""
        if self._host_key is None:
            key_path = self.path.with_name("host.key")
            try:
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                self._host_key = key_path.read_bytes()
            else:
                key = secrets.token_bytes(32)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(key)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._host_key = key
        return self._host_key

    @classmethod
    def existing(cls, path: Path) -> StateStore | None:
        """Open the database read-only if it exists: dry runs create and change nothing."""
        return cls(path, readonly=True) if path.exists() else None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Guarded]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- revisions

    def begin_revision(self, environment: str, revision: Revision, trigger: str) -> int:
        cur = self.db.execute(
            "INSERT INTO revisions"
            " (environment, sha, ref, origin, subject, trigger, started_at, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                environment,
                revision.sha,
                revision.ref,
                revision.origin,
                revision.subject,
                trigger,
                self.clock(),
                RevisionOutcome.APPLYING.value,
            ),
        )
        return int(cur.lastrowid or 0)

    def finish_revision(
        self, rev_id: int, outcome: RevisionOutcome, reason: str = "", actions: int = 0
    ) -> None:
        self.db.execute(
            "UPDATE revisions SET outcome = ?, reason = ?, finished_at = ?, actions = ?"
            " WHERE id = ?",
            (RevisionOutcome(outcome).value, reason, self.clock(), actions, rev_id),
        )

    def _records(self, sql: str, *params: Any) -> list[RevisionRecord]:
        try:
            return [RevisionRecord(*row) for row in self.db.execute(sql, params)]
        except (TypeError, ValueError) as exc:  # an unknown outcome, a missing column
            raise damaged(self.path, f"a revision record is not valid ({exc})") from exc

    def history(self, environment: str | None = None, limit: int = 50) -> list[RevisionRecord]:
        if environment:
            return self._records(
                "SELECT * FROM revisions WHERE environment = ? ORDER BY id DESC LIMIT ?",
                environment,
                limit,
            )
        return self._records("SELECT * FROM revisions ORDER BY id DESC LIMIT ?", limit)

    def healthy(self, environment: str, limit: int = 500) -> list[RevisionRecord]:
        """Revisions a rollback may return to, newest first."""
        marks = ", ".join("?" * len(_HEALTHY))
        return self._records(
            f"SELECT * FROM revisions WHERE environment = ? AND outcome IN ({marks})"  # noqa: S608 - placeholders only
            " ORDER BY id DESC LIMIT ?",
            environment,
            *_HEALTHY,
            limit,
        )

    def last_applied(self, environment: str) -> RevisionRecord | None:
        rows = self.healthy(environment, limit=1)
        return rows[0] if rows else None

    def last_attempt(self, environment: str) -> RevisionRecord | None:
        rows = self._records(
            "SELECT * FROM revisions WHERE environment = ? ORDER BY id DESC LIMIT 1", environment
        )
        return rows[0] if rows else None

    def latest_attempt_of(self, environment: str, sha: str) -> RevisionRecord | None:
        rows = self._records(
            "SELECT * FROM revisions WHERE environment = ? AND sha = ? ORDER BY id DESC LIMIT 1",
            environment,
            sha,
        )
        return rows[0] if rows else None

    def not_retried(self, environment: str, sha: str) -> RevisionRecord | None:
        """The latest attempt of ``sha`` if it is not to be retried until a new commit
        (it failed, was invalid, or was rolled back by hand)."""
        latest = self.latest_attempt_of(environment, sha)
        return latest if latest is not None and not latest.outcome.retried else None

    def interrupted(self) -> list[RevisionRecord]:
        return self._records(
            "SELECT * FROM revisions WHERE outcome = ? ORDER BY id", RevisionOutcome.APPLYING.value
        )

    # ---- inventory

    def inventory(self) -> Inventory:
        files = [
            InventoryFile(
                PurePosixPath(p),
                sha,
                mode,
                kind,
                comp,
                loads(self.path, digests, f"the inventory entry of {p}"),
            )
            for p, sha, mode, kind, comp, digests in self.db.execute(
                "SELECT path, sha256, mode, kind, component, secret_digests FROM inventory_files"
            )
        ]
        units = [
            InventoryUnit(name, comp, PurePosixPath(file), bool(start), bool(enable), probe)
            for name, comp, file, start, enable, probe in self.db.execute(
                "SELECT name, component, file, start, enable, probe FROM inventory_units"
            )
        ]
        return Inventory.from_parts(files, units)

    def record_file(self, f: InventoryFile) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO inventory_files VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(f.path),
                f.sha256,
                f.mode,
                f.kind,
                f.component,
                json.dumps(dict(f.secret_digests), sort_keys=True),
            ),
        )

    def forget_file(self, path: PurePosixPath) -> None:
        self.db.execute("DELETE FROM inventory_files WHERE path = ?", (str(path),))

    def record_unit(self, u: InventoryUnit) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO inventory_units VALUES (?, ?, ?, ?, ?, ?)",
            (u.name, u.component, str(u.file), int(u.start), int(u.enable), u.probe),
        )

    def forget_unit(self, name: str) -> None:
        self.db.execute("DELETE FROM inventory_units WHERE name = ?", (name,))

    def replace_units(self, units: list[InventoryUnit]) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM inventory_units")
            for u in units:
                self.record_unit(u)

    # ---- journal

    def journal_begin(self, run_id: str, actions: list[dict[str, Any]]) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM journal")
            self.db.executemany(
                "INSERT INTO journal (run_id, seq, action, state) VALUES (?, ?, ?, 'pending')",
                [(run_id, i, json.dumps(a, sort_keys=True)) for i, a in enumerate(actions)],
            )

    def journal_done(self, run_id: str, seq: int) -> None:
        self.db.execute(
            "UPDATE journal SET state = 'done' WHERE run_id = ? AND seq = ?", (run_id, seq)
        )

    def journal_pending(self) -> list[dict[str, Any]]:
        """The journaled actions of the last run not marked done, in order."""
        return [
            loads(self.path, action, "a journal entry")
            for (action,) in self.db.execute(
                "SELECT action FROM journal WHERE state = 'pending' ORDER BY seq"
            )
        ]

    def journal_clear(self) -> None:
        self.db.execute("DELETE FROM journal")

    # ---- events

    def event(self, level: str, kind: str, message: str, sha: str = "") -> None:
        self.db.execute(
            "INSERT INTO events (at, level, kind, message, sha) VALUES (?, ?, ?, ?, ?)",
            (self.clock(), level, kind, message, sha),
        )
        self.db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) - 10000 FROM events)")

    def events(self, since: float = 0.0, limit: int = 100) -> list[Event]:
        return [
            Event(*row)
            for row in self.db.execute(
                "SELECT id, at, level, kind, message, sha FROM events WHERE at >= ?"
                " ORDER BY id DESC LIMIT ?",
                (since, limit),
            )
        ]

    # ---- small facts: what was last fetched, what to fetch, the last fetch error

    def _put(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def _get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return loads(self.path, row[0], f"the stored {key!r}") if row else None

    def set_desired(self, revision: Revision) -> None:
        """The revision the last fetch found (what the host should run)."""
        self._put(
            "desired_revision",
            {"sha": revision.sha, "ref": revision.ref, "subject": revision.subject},
        )

    def desired(self) -> dict[str, str] | None:
        """``{sha, ref, subject}`` of the revision the last fetch found."""
        value = self._get("desired_revision")
        return dict(value) if isinstance(value, dict) else None

    def set_fetch_error(self, error: str | None) -> None:
        self._put("fetch_error", error)

    def fetch_error(self) -> str | None:
        """Why the last fetch failed; None when it succeeded."""
        value = self._get("fetch_error")
        return str(value) if value else None

    def set_target(self, target: Mapping[str, str | None]) -> None:
        """What ``atlas reconcile`` was last asked to converge to (repo, ref, path, env)."""
        self._put("target", dict(target))

    def target(self) -> dict[str, str | None]:
        value = self._get("target")
        return dict(value) if isinstance(value, dict) else {}

    def put_rollout(self, deployment: str, doc: Mapping[str, Any]) -> None:
        """The rollout of ``deployment`` in progress or last finished (reconciler.rollout)."""
        self._put(f"rollout:{deployment}", dict(doc))

    def rollouts(self) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT key, value FROM meta WHERE key LIKE 'rollout:%'")
        return {key.partition(":")[2]: json.loads(value) for key, value in rows}

    def request_rollout(self, deployment: str, verb: str) -> None:
        """``atlas rollout promote|abort``: for the reconciler running the rollout."""
        self._put(f"rollout-request:{deployment}", verb)

    def take_rollout_request(self, deployment: str) -> str | None:
        with self.transaction():
            value = self._get(f"rollout-request:{deployment}")
            self.db.execute("DELETE FROM meta WHERE key = ?", (f"rollout-request:{deployment}",))
        return str(value) if value else None


def state_path(reconciler_dir: Path) -> Path:
    return reconciler_dir / "state.db"
