"""Keeping the reconciler out of the way while a restore swaps the database.

A reconcile cycle (its self-heal included) runs under an exclusive ``flock`` on
``<state>/reconciler/lock``. A restore over the host's database takes the same lock
(and writes its PID, as a reconcile does, so a waiting reconcile can say who holds
it) for as long as the units are down: self-heal cannot start them mid-swap, and it
finds them up again when it gets the lock. The lock dies with the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from atlas.errors import BackupError
from seams import pidlock


@contextmanager
def reconciler_paused(lock: Path, wait_s: float = 30.0) -> Iterator[None]:
    try:
        with pidlock.held(lock, wait_s):
            yield
    except pidlock.Busy as exc:
        raise BackupError(
            f"a reconcile ({exc.holder}) holds {lock}: nothing was restored; "
            "try again when it is done"
        ) from None
