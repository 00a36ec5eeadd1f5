"""What the API's HTTP connections may cost: uvicorn's h11 protocol with a header
deadline, a connection cap below the descriptor limit, and one log line per
out-of-descriptors episode.

uvicorn closes an idle keep-alive connection (``KEEP_ALIVE_S``) but not one that
never sends a request, or sends a head a byte at a time, and it accepts until the
process is out of descriptors (then asyncio logs every failed accept). Here:

* a request head must be all in ``HEAD_TIMEOUT_S`` after the connection was made, or
  after the first byte of a next request on a kept-alive one; else it is closed;
* at most ``Guard.cap`` connections are open (``descriptors.connection_cap``: the
  limit less a reserve); one more closes the oldest connection that is waiting for
  a request (never one being answered), or itself when all are busy, so a health
  probe always gets in while idle sockets are held against the API;
* asyncio's "socket.accept() out of system resource" goes through
  ``descriptors.Exhaustion``: a line when it starts, a line with the count when it
  clears.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from seams.descriptors import Exhaustion, accept_backlog, connection_cap

log = logging.getLogger("atlas.api")
HEAD_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 30
MAX_HEAD = 16 * 1024  # bytes of a request head h11 buffers (431/400 beyond)
ACCEPT_FAILED = "socket.accept() out of system resource"


@dataclass(eq=False)
class Guard:
    """One server's connection limits and what they did."""

    cap: int = field(default_factory=connection_cap)
    backlog: int = field(default_factory=accept_backlog)
    head_timeout: float = HEAD_TIMEOUT_S
    waiting: OrderedDict[Any, None] = field(default_factory=OrderedDict)  # oldest first
    out_of_files: Exhaustion = field(
        default_factory=lambda: Exhaustion(log, "api: accept() out of descriptors")
    )
    cut_off: int = 0  # closed: the head did not come in time
    dropped: int = 0  # closed to make room under the cap

    def exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_FAILED:
            self.out_of_files.hit(str(context.get("exception") or "no resources"))
            return
        loop.default_exception_handler(context)


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol under the limits of the class's ``guard``."""

    guard: Guard
    head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.out_of_files.ok()
        if len(self.connections) > self.guard.cap and not self._make_room():
            self.transport.close()
            return
        self.guard.waiting[self] = None
        self._arm()

    def _make_room(self) -> bool:
        if not self.guard.waiting:
            return False
        oldest, _ = self.guard.waiting.popitem(last=False)
        self.guard.dropped += 1
        oldest.transport.close()
        return True

    def _arm(self) -> None:
        self.head_timer = self.loop.call_later(self.guard.head_timeout, self._head_late)

    def _head_late(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self.guard.cut_off += 1
            self.transport.close()

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def data_received(self, data: bytes) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.head_timer is None:
            self._arm()  # the first byte of a next request: its head has a deadline
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:  # a whole head is in: it is being answered
            self._disarm()
            self.guard.waiting.pop(self, None)

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self.guard.waiting[self] = None  # kept alive: idle until its next request
        before = self.cycle
        super().on_response_complete()
        if self.cycle is not before:  # a pipelined request started at once
            self.guard.waiting.pop(self, None)
        elif self.conn.trailing_data[0] and self.head_timer is None:
            self._arm()  # part of a next request came while this one was answered

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.waiting.pop(self, None)
        super().connection_lost(exc)


def protocol_class(guard: Guard) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, under ``guard``'s limits."""
    return type("GuardedH11", (GuardedH11,), {"guard": guard})
