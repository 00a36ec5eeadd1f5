"""Open-file descriptors: the limit this process really has, the connection cap a
server derives from it, and one log line per out-of-descriptors condition.

A server that lets clients open as many connections as the process may open files
leaves nothing for its own work (core's fetches, SQLite, git): the cap keeps a
quarter of the limit (at least ``RESERVE_MIN``) free. When ``accept()`` fails for
want of descriptors anyway, ``Exhaustion`` says so once when it starts and once, with
the count, when it clears — not once per failed accept (242,080 lines in 12 s).
"""

from __future__ import annotations

import errno
import logging
import resource
import time
from collections.abc import Callable

RESERVE_MIN = 64
CAP_MIN = 16
UNLIMITED = 1 << 20
QUIET_S = 5.0  # without a hit for this long, a condition has cleared
# accept() errors that mean "no resources now", not "this client"
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def open_files_limit() -> int:
    """The soft RLIMIT_NOFILE this process runs with (what systemd's LimitNOFILE= set)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return UNLIMITED if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(limit: int | None = None) -> int:
    """Connections a server may hold open: the descriptor limit less a reserve."""
    n = open_files_limit() if limit is None else limit
    return max(CAP_MIN, n - max(RESERVE_MIN, n // 4))


def accept_backlog(limit: int | None = None, most: int = 2048) -> int:
    """A listen backlog for a server that accepts in batches of its backlog (asyncio
    does): at most half the reserve, so one batch cannot use up the descriptors."""
    n = open_files_limit() if limit is None else limit
    return max(CAP_MIN, min(most, (n - connection_cap(n)) // 2))


class Exhaustion:
    """A condition logged when it starts and when it clears, with how often it hit.
    It clears once ``quiet_s`` pass without a hit, so a condition that flickers (each
    shed connection lets one accept through) is one episode, not a line per flicker."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        clock: Callable[[], float] = time.monotonic,
        quiet_s: float = QUIET_S,
    ) -> None:
        self.log = log
        self.what = what
        self.clock = clock
        self.quiet_s = quiet_s
        self.hits = 0
        self.since = 0.0
        self.last = 0.0
        self.episodes = 0

    @property
    def active(self) -> bool:
        return self.hits > 0

    def hit(self, detail: str) -> None:
        if self.hits == 0:
            self.since = self.clock()
            self.episodes += 1
            self.log.warning("%s: %s (logged once until it clears)", self.what, detail)
        self.hits += 1
        self.last = self.clock()

    def ok(self) -> None:
        """Things went well just now: log the end of an episode once it has been quiet."""
        if self.hits == 0 or self.clock() - self.last < self.quiet_s:
            return
        self.log.warning(
            "%s cleared: %d time(s) in %.1fs", self.what, self.hits, self.last - self.since
        )
        self.hits = 0
