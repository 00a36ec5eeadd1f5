"""Prompt stops: every long-running Atlas process ends within ``STOP_DEADLINE_S`` of
SIGTERM, with status 0, whatever it was doing (a fetch, a scrape, a request, a sleep).

Each service first stops the graceful way (its loop sees the stop, bounded waits
for work in flight). ``arm_deadline`` is the backstop for what cannot be cut short
from outside, a thread blocked in a socket read or a library call: once the
deadline passes, it writes where every thread was (to the journal, on stderr) and
ends the process with status 0. Ending there is as safe as SIGKILL, which every
component already survives (SQLite transactions, journaled reconcile actions,
the outbox); the unit ends ``inactive``, not ``failed``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import sys
import threading

from seams import journal

STOP_DEADLINE_S = 4.0  # below every unit's TimeoutStopSec, within the 5 s we promise
GRACE_S = 2.0  # what the graceful path may spend waiting for work in flight


def exit_now(code: int = 0) -> None:
    """End the process at once, after flushing logs and stdio (no atexit, no joins)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _force(seconds: float) -> None:
    try:
        mark = journal.prefix("warning", journal.stream_is_journal(sys.stderr))
        sys.stderr.write(
            f"{mark}did not stop within {seconds:g}s of being asked to; exiting now. "
            "Where each thread was:\n"
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    finally:
        exit_now(0)


_armed = threading.Lock()


def arm_deadline(seconds: float = STOP_DEADLINE_S) -> None:
    """From now on the process ends within ``seconds`` (idempotent: the first call counts)."""
    if not _armed.acquire(blocking=False):
        return
    timer = threading.Timer(seconds, _force, args=(seconds,))
    timer.daemon = True
    timer.name = "stop-deadline"
    timer.start()
