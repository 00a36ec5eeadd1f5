"""An exclusive ``flock`` on a file that names its holder: the reconcile lock
(``<state>/reconciler/lock``), also taken by a restore that swaps the database.

The holder writes its PID into the file so that a waiting process can say who holds
it. The lock dies with its process, so a SIGKILLed holder never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class Busy(Exception):
    """The lock stayed held for the whole wait; ``holder`` says by whom."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def holder(path: Path, tries: int = 5) -> str:
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
def held(
    path: Path, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the lock; wait up to ``wait`` seconds for it (``on_wait`` is told once
    who holds it), then raise ``Busy``."""
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
                who = holder(path)
                if time.monotonic() >= deadline:
                    raise Busy(who) from None
                if on_wait and not told:
                    on_wait(who)
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
