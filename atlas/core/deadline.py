"""One deadline per fetch, kept by the sockets themselves.

httpx's timeouts apply to each socket operation: a server that sends its headers a
byte at a time resets the read timeout with every byte and holds a worker for as long
as it likes. Here every connect, TLS handshake, write and read of a fetch is given at
most what is left of that fetch's deadline (a ``Budget``, set for the calling thread
by ``within``), and a read waits in slices of ``SLICE_S`` so a shutdown
(``Budget.cancelled``) cuts it short. The socket layer is httpcore's own
``SyncBackend``, wrapped; ``DeadlineTransport`` is httpx's transport using it.

Past the deadline an operation raises httpcore's timeout of its kind (httpx turns it
into its own, the fetcher into ``FetchTimedOut``); a cancelled one raises
``FetchCancelled`` straight through httpx.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import httpcore
import httpx

from atlas.errors import FetchCancelled

SLICE_S = 0.2  # how long a read waits before looking at the budget again
T = TypeVar("T")


@dataclass(frozen=True)
class Budget:
    deadline: float  # time.monotonic() by which the whole fetch is over
    cancelled: threading.Event | None = None

    def left(self, timeout: float | None, started: float) -> float:
        """Seconds this operation may still take: the lesser of its own timeout
        (from ``started``) and the fetch's deadline; FetchCancelled on shutdown."""
        if self.cancelled is not None and self.cancelled.is_set():
            raise FetchCancelled("cut short: the worker is shutting down")
        now = time.monotonic()
        left = self.deadline - now
        if timeout is not None:
            left = min(left, started + timeout - now)
        return left


_budget: ContextVar[Budget | None] = ContextVar("atlas_fetch_budget", default=None)


@contextmanager
def within(budget: Budget) -> Iterator[None]:
    """Every socket operation of this thread's fetches keeps to ``budget`` meanwhile."""
    token = _budget.set(budget)
    try:
        yield
    finally:
        _budget.reset(token)


def _once(timeout: float | None, error: type[Exception], op: Callable[[float | None], T]) -> T:
    """``op`` given what is left of the budget, in one go (connect, handshake, write)."""
    budget = _budget.get()
    if budget is None:
        return op(timeout)
    left = budget.left(timeout, time.monotonic())
    if left <= 0:
        raise error("the deadline of the fetch has passed")
    return op(left)


def _sliced(timeout: float | None, op: Callable[[float | None], T]) -> T:
    """A read, in waits of at most ``SLICE_S`` until its timeout or the deadline."""
    budget = _budget.get()
    if budget is None:
        return op(timeout)
    started = time.monotonic()
    while True:
        left = budget.left(timeout, started)
        if left <= 0:
            raise httpcore.ReadTimeout("no answer within the timeout or the deadline")
        try:
            return op(min(left, SLICE_S))
        except httpcore.ReadTimeout:
            continue  # nothing was read: look at the budget and wait again


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _sliced(timeout, lambda t: self._inner.read(max_bytes, t))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _once(timeout, httpcore.WriteTimeout, lambda t: self._inner.write(buffer, t))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(
            _once(
                timeout,
                httpcore.ConnectTimeout,
                lambda t: self._inner.start_tls(ssl_context, server_hostname, t),
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking sockets, each operation kept within the current budget."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = _once(
            timeout,
            httpcore.ConnectTimeout,
            lambda t: self._inner.connect_tcp(host, port, t, local_address, socket_options),
        )
        return _Stream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = _once(
            timeout,
            httpcore.ConnectTimeout,
            lambda t: self._inner.connect_unix_socket(path, t, socket_options),
        )
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (its request mapping and error translation) over a pool
    whose sockets keep to the budget of the fetch."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(),
        )
