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


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return "another process"
    return f"PID {pid}" if pid.isdigit() else "another process"


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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
