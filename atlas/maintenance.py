"""Maintenance mode: a small JSON file in the data folder, shared by every service.

``atlas maintenance on`` writes it atomically (``seams.fsio.write_atomic``); the
API's ``/readyz`` reports maintenance while it is active, and the monitoring agent
keeps evaluating alerts but sends no notifications. The file's path comes from each
service's rendered config (``maintenanceFile``). An expired window (``until`` in the
past) counts as off.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from seams.fsio import write_atomic


@dataclass(frozen=True)
class Maintenance:
    reason: str
    since: float
    until: float | None  # None: until turned off

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


def read(path: Path, now: float | None = None) -> Maintenance | None:
    """The active maintenance window, or None (no file, expired, or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        window = Maintenance(
            str(data["reason"]),
            float(data["since"]),
            None if data.get("until") is None else float(data["until"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return window if window.active(time.time() if now is None else now) else None


def turn_on(
    path: Path, reason: str, duration_s: float | None, now: float | None = None
) -> Maintenance:
    now = time.time() if now is None else now
    window = Maintenance(reason, now, None if duration_s is None else now + duration_s)
    write_atomic(path, json.dumps(asdict(window)).encode(), 0o644)
    return window


def turn_off(path: Path) -> bool:
    """Remove the file; True if maintenance was on."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
