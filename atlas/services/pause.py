"""Keeping the reconciler out of the way while a restore swaps the database.

A reconcile cycle (its self-heal included) runs under an exclusive ``flock`` on
``<state>/reconciler/lock``. A restore over the host's database takes the same lock
(and writes its PID, as a reconcile does, so a waiting reconcile can say who holds
it) for as long as the units are down: self-heal cannot start them mid-swap, and it
finds them up again when it gets the lock. The lock dies with the process.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from atlas.errors import BackupError


@contextmanager
def reconciler_paused(lock: Path, wait_s: float = 30.0) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise BackupError(
                        f"a reconcile (PID {holder}) holds {lock}: nothing was restored; "
                        "try again when it is done"
                    ) from None
                time.sleep(0.1)
        record = f"{os.getpid():>10}\n".encode()
        os.pwrite(fd, record, 0)
        os.ftruncate(fd, len(record))
        yield
    finally:
        os.close(fd)
