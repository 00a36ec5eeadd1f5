"""``atlas services run``: one round of background jobs, in order, each on its own:

1. dead-letter sweep — retry the dead letters whose next retry time has come,
   with the sources of the worker's config rendered beside this one (core.json);
2. backup — per the ``backup`` block (none: skipped): a page backup of the kind
   due (``pagebackups.scheduled``), verified, then retention and a drill when due;
3. upkeep — PRAGMA optimize and a WAL checkpoint.

A failing job does not stop the next; the exit status is 1 if any failed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atlas import logs
from atlas.core import settings as core_settings
from atlas.core.oneshot import fetch_now
from atlas.core.store import open_store
from atlas.errors import AtlasError, BackupError
from atlas.resilience import dlq
from atlas.services import pagebackups
from atlas.services import settings as services_settings
from atlas.services.settings import ServicesSettings
from atlas.services.upkeep import upkeep
from seams.clock import Clock, SystemClock

log = logging.getLogger("atlas.services")


def sweep_dead_letters(s: ServicesSettings, clock: Clock) -> dict[str, Any]:
    if not s.database.exists():
        return {"skipped": "no database yet"}
    if not s.core_config.exists():
        return {"skipped": f"{s.core_config} not found: no sources to retry with"}
    core = core_settings.load(s.core_config)
    store = open_store(s.database, s.busy_timeout_s)
    try:
        due = [e.source for e in dlq.entries(store.conn, due_at=clock.wall())]
        outcomes = fetch_now(core, store, due, clock)
    finally:
        store.close()
    for o in outcomes:
        log.info("dead letter %s: %s (%s)", o.source, o.status, o.message)
    return {
        "retried": len(outcomes),
        "resolved": sum(1 for o in outcomes if o.ok),
        "stillFailing": [o.source for o in outcomes if not o.ok],
    }


def backup_job(s: ServicesSettings, clock: Clock, env: Mapping[str, str]) -> dict[str, Any]:
    b = s.backup
    if b is None:
        return {"skipped": "no BackupPolicy"}
    if not s.database.exists():
        raise BackupError(f"database {s.database} does not exist; nothing to back up")
    target = pagebackups.Target.of(b, b.destination, env)
    return pagebackups.scheduled(target, s.database, clock.wall(), s.busy_timeout_s)


def run(config: Path, env: Mapping[str, str] | None = None, clock: Clock | None = None) -> int:
    s = services_settings.load(config)
    logs.setup(s.log_level, "services")
    clock = clock or SystemClock()
    environ = env if env is not None else os.environ
    failed = []
    jobs = (
        ("dead-letter sweep", lambda: sweep_dead_letters(s, clock)),
        ("backup", lambda: backup_job(s, clock, environ)),
        ("upkeep", lambda: upkeep(s.database, s.busy_timeout_s)),
    )
    for name, job in jobs:
        try:
            result = job()
        except AtlasError as exc:
            log.error("%s failed: %s", name, exc)
            failed.append(name)
        else:
            log.info("%s: %s", name, result)
    if failed:
        log.error("failed: %s", ", ".join(failed))
        return 1
    return 0
