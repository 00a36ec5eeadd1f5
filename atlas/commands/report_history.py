"""``atlas report`` from the history Atlas keeps on this host: the content database
(items stored per source, each source's last fetch), the reconciler's state database
(revisions and their outcomes, drift and fetch-error events) and the monitoring
agent's database (alert transitions). All opened read-only; a database that is not
there leaves its section out and says so."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import reconciler


def _database(access: reconciler.Access, component: str) -> Path | None:
    layout = access.layout
    path = layout.on_disk(layout.config_dir) / f"{component}.json"
    try:
        db = json.loads(path.read_text()).get("database", {}).get("path")
    except (OSError, ValueError, AttributeError):
        return None
    found = layout.on_disk(db) if isinstance(db, str) else None
    return found if found is not None and found.is_file() else None


def _readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def ingestion(db: Path, since: float, until: float) -> dict[str, Any]:
    conn = _readonly(db)
    try:
        items = dict(
            conn.execute(
                "SELECT source, COUNT(*) FROM items WHERE first_seen_at >= ? AND first_seen_at < ?"
                " GROUP BY source",
                (since, until),
            ).fetchall()
        )
        rows = conn.execute(
            "SELECT name, last_fetch_at, last_success_at, last_status, last_error,"
            " consecutive_errors FROM sources WHERE removed_at IS NULL ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    sources = [
        {
            "source": name,
            "items": int(items.get(name, 0)),
            "last_fetch_at": fetched,
            "last_success_at": succeeded,
            "last_status": status,
            "consecutive_errors": errors,
            "last_error": (error or "")[:200] if errors else "",
        }
        for name, fetched, succeeded, status, error, errors in rows
    ]
    total = sum(items.values())
    hours = max(until - since, 1.0) / 3600
    healthy = sum(1 for s in sources if not s["consecutive_errors"])
    return {
        "items": total,
        "items_per_hour": round(total / hours, 2),
        # the share of sources whose latest fetch worked (per-fetch outcomes are
        # counted by atlas_ingest_fetches_total: ask --prometheus for that ratio)
        "sources_ok_ratio": round(healthy / len(sources), 4) if sources else None,
        "success_ratio": None,
        "top_sources": sorted(sources, key=lambda s: (-s["items"], s["source"]))[:10],
        "failing_sources": sorted(
            (s for s in sources if s["consecutive_errors"]),
            key=lambda s: (-s["consecutive_errors"], s["source"]),
        ),
    }


def reconciles(access: reconciler.Access, since: float) -> dict[str, Any] | None:
    if not access.state_path.exists():
        return None
    store = access.store(must_exist=True)
    try:
        revisions = [r for r in store.history(None, limit=100_000) if r.started_at >= since]
        events = store.events(since, limit=100_000)
    finally:
        store.close()
    outcomes = Counter(str(r.outcome) for r in revisions)
    kinds = Counter(e.kind for e in events)
    durations = sorted(r.finished_at - r.started_at for r in revisions if r.finished_at)
    return {
        "revisions": len(revisions),
        "outcomes": dict(sorted(outcomes.items())),
        "rollbacks": outcomes.get("failed", 0) + outcomes.get("rolled-back", 0),
        "drift_events": kinds.get("drift", 0),
        "fetch_errors": kinds.get("fetch", 0),
        "invalid_revisions": outcomes.get("invalid", 0),
        "slowest_apply_seconds": round(durations[-1], 3) if durations else None,
    }


def alerts(db: Path, since: float, until: float) -> dict[str, Any]:
    conn = _readonly(db)
    try:
        rows = conn.execute(
            "SELECT at, rule, fingerprint, to_state FROM alert_history"
            " WHERE fingerprint != '' AND at < ? ORDER BY at, id",
            (until,),
        ).fetchall()
    finally:
        conn.close()
    fired: Counter[str] = Counter()
    firing_s: dict[str, float] = {}
    began: dict[str, tuple[str, float]] = {}
    for at, rule, fingerprint, to in rows:
        if to == "firing":
            began[fingerprint] = (rule, at)
            if at >= since:
                fired[rule] += 1
        elif fingerprint in began:
            rule_of, start = began.pop(fingerprint)
            firing_s[rule_of] = firing_s.get(rule_of, 0.0) + max(0.0, at - max(start, since))
    for rule, start in began.values():  # still firing
        firing_s[rule] = firing_s.get(rule, 0.0) + max(0.0, until - max(start, since))
    rules = sorted(set(fired) | {r for r, s in firing_s.items() if s > 0})
    return {
        "fired": sum(fired.values()),
        "by_rule": [
            {"rule": r, "fired": fired.get(r, 0), "firing_seconds": round(firing_s.get(r, 0.0))}
            for r in rules
        ],
    }


def report(access: reconciler.Access, since: float, until: float) -> dict[str, Any]:
    content = _database(access, "core")
    agent = _database(access, "monitoring")
    missing = []
    if content is None:
        missing.append("content database (no core.json or no database yet)")
    if agent is None:
        missing.append("monitoring database (no monitoring.json or no database yet)")
    sync = reconciles(access, since)
    if sync is None:
        missing.append(f"reconciler state ({access.state_path})")
    return {
        "from": "history",
        "ingestion": _read(ingestion, content, since, until, missing),
        "reconciler": sync,
        "alerts": _read(alerts, agent, since, until, missing),
        "api": None,
        "missing": missing,
    }


def _read(
    section: Callable[[Path, float, float], dict[str, Any]],
    db: Path | None,
    since: float,
    until: float,
    missing: list[str],
) -> dict[str, Any] | None:
    """``section`` of ``db``; None (and why, in ``missing``) when it cannot be read."""
    if db is None:
        return None
    try:
        return section(db, since, until)
    except sqlite3.Error as exc:
        missing.append(f"{db}: cannot be read ({exc})")
        return None
