"""The connection side of ``seams.httpserver``: no thread waits on a client.

One selector thread accepts every connection and reads each request — head and
body — without blocking; only a request that has fully arrived goes to the bounded
pool of worker threads, which answers it and closes the connection. So:

* a connection that sends nothing, or half a head, costs a descriptor and a few
  bytes, not a thread; it is closed when its request is not all in
  ``Limits.request_timeout`` seconds after it was accepted;
* at most ``Limits.max_open`` connections are held while their request arrives
  (by default the descriptor limit less a reserve, ``descriptors.connection_cap``);
  one more makes the oldest of them be dropped, so a new client — a health probe —
  always gets in;
* the bytes of unfinished requests are bounded in all (``BUFFERED_BODIES`` bodies):
  beyond, the oldest unfinished connections are dropped;
* at most ``Limits.max_connections`` requests are answered at once; one more gets
  503 at once, except a health probe (``urgent``), which has a worker of its own;
* when ``accept()`` fails for want of descriptors, the oldest waiting connections
  are dropped (or, with none, accepting pauses briefly: no busy loop) and one line
  is logged per episode (``descriptors.Exhaustion``);
* the listen backlog is ``BACKLOG`` (the socketserver default was 5).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from seams.descriptors import OUT_OF_RESOURCES, Exhaustion, connection_cap

log = logging.getLogger("seams.httpserver")
BACKLOG = min(1024, socket.SOMAXCONN)
MAX_HEAD = 16 * 1024  # bytes of a request line and headers; 431 beyond
ACCEPT_PAUSE_S = 0.1  # after accept() ran out of descriptors with nothing to shed
SHED = 16  # waiting connections dropped when accept() runs out of descriptors
TICK_S = 0.25
BUFFERED_BODIES = 16  # bytes held for unfinished requests, in all: this many max_body
BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Limits:
    """What one server allows a client."""

    max_body: int = 1024 * 1024  # bytes of a request body
    request_timeout: float = 10.0  # seconds to send a whole request, from accept
    max_connections: int = 64  # requests answered at once; more are refused with 503
    max_open: int | None = None  # connections held at once; None: from RLIMIT_NOFILE

    def open_cap(self) -> int:
        return self.max_open if self.max_open is not None else connection_cap()


@dataclass(frozen=True)
class Head:
    method: str
    target: str  # as sent: path and query
    headers: dict[str, str]  # names in lower case


@dataclass(frozen=True)
class Received:
    """A request that has arrived, or why it cannot be served (``status``)."""

    head: Head | None  # None when the head is malformed or too large
    body: bytes | None  # None when it is too large or its length is not a number
    status: int = 0  # 400 or 431 when head is None


@dataclass(eq=False)
class _Pending:
    sock: socket.socket
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    head: Head | None = None
    body_at: int = 0
    length: int = 0


def parse_head(raw: bytes) -> Head | None:
    """The request line and headers (without the blank line), or None if malformed."""
    lines = raw.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/") or not parts[0].isalpha():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    return Head(parts[0], parts[1], headers)


def _body_length(head: Head, limit: int) -> int | None:
    if head.method != "POST":
        return 0
    raw = head.headers.get("content-length", "0").strip()
    if not raw.isdigit() or int(raw) > limit:
        return None
    return int(raw)


class ConnectionLoop:
    """Accepts on ``listener`` and hands each arrived request to ``answer`` (run in a
    worker thread; it returns the bytes to send)."""

    def __init__(
        self,
        listener: socket.socket,
        limits: Limits,
        answer: Callable[[Received], bytes],
        urgent: Callable[[Head], bool],
        name: str,
    ) -> None:
        self.listener = listener
        self.limits = limits
        self.max_open = limits.open_cap()
        self.answer = answer
        self.urgent = urgent
        self.sel = selectors.DefaultSelector()
        self.pending: dict[socket.socket, _Pending] = {}  # accept order = deadline order
        self.workers = ThreadPoolExecutor(limits.max_connections + 1, f"{name}-worker")
        self.slots = threading.BoundedSemaphore(limits.max_connections)
        self.reserve = threading.BoundedSemaphore(1)  # for urgent requests
        self.closing = threading.Event()
        self.wake_r, self.wake_w = socket.socketpair()
        self.out_of_files = Exhaustion(log, f"{name}: accept() out of descriptors")
        self.paused_until = 0.0
        self.buffered = 0  # bytes of unfinished requests, in all
        self.busy_refusals = 0
        self.cut_off = 0
        self.dropped = 0

    # ---- the selector thread

    def run(self) -> None:
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.sel.register(self.wake_r, selectors.EVENT_READ, self.wake_r)
        try:
            while not self.closing.is_set():
                for key, _ in self.sel.select(self._timeout()):
                    if key.data is None:
                        self._accept()
                    elif isinstance(key.data, _Pending):
                        self._read(key.data)
                self._resume_accepting()
                self._sweep(time.monotonic())
                self.out_of_files.ok()
        finally:
            self._close_all()

    def _timeout(self) -> float:
        now = time.monotonic()
        wait = TICK_S
        if self.pending:
            wait = min(wait, next(iter(self.pending.values())).deadline - now)
        if self.paused_until:
            wait = min(wait, self.paused_until - now)
        return max(0.0, wait)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _addr = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:
                    self._out_of_files(os.strerror(exc.errno or 0))
                return
            self.out_of_files.ok()
            if len(self.pending) >= self.max_open:
                self._drop_oldest()
            sock.setblocking(False)
            pending = _Pending(sock, time.monotonic() + self.limits.request_timeout)
            self.pending[sock] = pending
            self.sel.register(sock, selectors.EVENT_READ, pending)

    def _out_of_files(self, why: str) -> None:
        """Shed the oldest waiting connections so that the backlog (where a health
        probe waits) moves on; with none to shed, pause accepting (no busy loop)."""
        self.out_of_files.hit(why)
        if not self.pending:
            self._pause_accepting()
        for _ in range(min(SHED, len(self.pending))):
            self._drop_oldest()

    def _pause_accepting(self) -> None:
        self.sel.unregister(self.listener)
        self.paused_until = time.monotonic() + ACCEPT_PAUSE_S

    def _resume_accepting(self) -> None:
        if self.paused_until and time.monotonic() >= self.paused_until:
            self.paused_until = 0.0
            self.sel.register(self.listener, selectors.EVENT_READ, None)

    def _read(self, p: _Pending) -> None:
        try:
            data = p.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(p)
            return
        p.buf += data
        self.buffered += len(data)
        while self.buffered > BUFFERED_BODIES * self.limits.max_body and p.sock in self.pending:
            self._drop_oldest()  # many slow bodies at once: memory stays bounded
        if p.sock not in self.pending or (p.head is None and not self._read_head(p)):
            return
        if len(p.buf) - p.body_at >= p.length:
            self._dispatch(p, Received(p.head, bytes(p.buf[p.body_at : p.body_at + p.length])))

    def _read_head(self, p: _Pending) -> bool:
        """True when the head is in and the body is to be read; dispatches errors."""
        end = p.buf.find(b"\r\n\r\n")
        if end < 0 or end > MAX_HEAD:
            if len(p.buf) > MAX_HEAD:
                self._dispatch(p, Received(None, None, 431))
            return False
        p.head = parse_head(bytes(p.buf[:end]))
        if p.head is None:
            self._dispatch(p, Received(None, None, 400))
            return False
        length = _body_length(p.head, self.limits.max_body)
        if length is None:
            self._dispatch(p, Received(p.head, None))
            return False
        p.body_at, p.length = end + 4, length
        return True

    def _sweep(self, now: float) -> None:
        while self.pending:
            oldest = next(iter(self.pending.values()))
            if oldest.deadline > now:
                return
            self.cut_off += 1
            self._close(oldest)

    def _drop_oldest(self) -> None:
        if self.pending:
            self.dropped += 1
            self._close(next(iter(self.pending.values())))

    def _forget(self, p: _Pending) -> None:
        del self.pending[p.sock]
        self.buffered -= len(p.buf)
        self.sel.unregister(p.sock)

    def _close(self, p: _Pending) -> None:
        self._forget(p)
        p.sock.close()

    def _dispatch(self, p: _Pending, received: Received) -> None:
        self._forget(p)
        if self.slots.acquire(blocking=False):
            release = self.slots.release
        elif (
            received.head is not None
            and self.urgent(received.head)
            and self.reserve.acquire(blocking=False)
        ):
            release = self.reserve.release
        else:
            self.busy_refusals += 1
            with contextlib.suppress(OSError):
                p.sock.send(BUSY)
            p.sock.close()
            return
        try:
            self.workers.submit(self._work, p.sock, received, release)
        except RuntimeError:  # the pool is shut down: the server is stopping
            release()
            p.sock.close()

    def _close_all(self) -> None:
        for p in list(self.pending.values()):
            self._close(p)
        self.sel.close()
        self.listener.close()
        self.wake_r.close()
        self.wake_w.close()
        self.workers.shutdown(wait=False, cancel_futures=True)

    # ---- worker threads

    def _work(self, sock: socket.socket, received: Received, release: Callable[[], None]) -> None:
        try:
            sock.setblocking(True)
            sock.settimeout(self.limits.request_timeout)  # a client that will not read
            with contextlib.suppress(OSError):
                sock.sendall(self.answer(received))
        finally:
            sock.close()
            release()

    # ---- any thread

    def stop(self) -> None:
        self.closing.set()
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")
