"""One reconcile at a time: an exclusive ``flock`` on ``<state>/reconciler/lock``.

The holder writes its PID into the file so that a second reconcile can say who
holds it. The lock dies with its process, so a SIGKILLed reconcile never leaves
a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import LockBusy


def _holder(path: Path, tries: int = 5) -> str:
    """Who holds the lock. A holder that has just taken it may not have written its
    PID yet (a new, empty file): look again for a moment before saying "another"."""
    for attempt in range(tries):
        try:
            pid = path.read_text().strip()
        except OSError:
            return "another process"
        if pid.isdigit():
            return f"PID {pid}"
        if attempt < tries - 1:
            time.sleep(0.02)
    return "another process"


@contextmanager
def reconcile_lock(
    path: Path, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the lock; wait up to ``wait`` seconds for it, then raise LockBusy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"another reconcile ({holder}) holds {path}; it was left alone. "
                        "Try again when it is done, or pass --wait SECONDS"
                    ) from None
                if on_wait and not told:
                    on_wait(f"waiting for the reconcile lock held by {holder}")
                    told = True
                time.sleep(0.1)
        # one write of a fixed width, then the length: a reader never sees the file
        # emptied, only the previous holder's PID or this one
        record = f"{os.getpid():>10}\n".encode()
        os.pwrite(fd, record, 0)
        os.ftruncate(fd, len(record))
        yield
    finally:
        os.close(fd)
