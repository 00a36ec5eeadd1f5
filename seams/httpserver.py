"""The small HTTP server behind every ``/metrics``, ``/healthz`` and the git webhook.

A route table ``{(method, path): handler}``; a handler takes a ``Request`` and returns
a ``Response``. What a server facing a network needs is here once, for all of them:

* every connection has a deadline for its whole request (``Limits.request_timeout``,
  counted from accept to the last byte of the body): a client that opens a socket and
  sends nothing, or trickles its headers a byte at a time, is cut off instead of
  holding a thread forever;
* at most ``Limits.max_connections`` are served at once; one more is answered 503 and closed
  at once, so a flood cannot exhaust threads or descriptors;
* request bodies are capped (``Limits.max_body``; 413 beyond, and for a missing or bad
  ``Content-Length`` on a POST);
* a path that exists under another method gets 405 with ``Allow``, an unknown one the
  server's ``not_found`` response; a handler that raises gets 500 and the server goes
  on; access logs are not written (they would drown the journal);
* IPv4 and IPv6 (a host with ``:``), ``observe(route, method, status, seconds)`` for
  request metrics (``route`` is None for an unknown path).

One request per connection (HTTP/1.0 semantics): Prometheus and health probes open a
connection per request anyway, and it keeps a slow client from pinning a thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode())

    @classmethod
    def json(cls, status: int, value: Any) -> Response:
        return cls(status, json.dumps(value).encode(), JSON)


Handler = Callable[[Request], Response]
Observe = Callable[[str | None, str, int, float], None]
NOT_FOUND = Response.text(404, "not found\n")
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Server(ThreadingHTTPServer):
    """Threads bounded by ``slots``; a request not fully received ``timeout`` seconds
    after its connection was accepted is cut off (one reaper thread for all)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        slots: int,
        timeout: float,
    ) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._request_timeout = timeout
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.busy_refusals = 0
        self.cut_off = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.busy_refusals += 1
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        with self._lock:
            self._deadlines[request] = time.monotonic() + self._request_timeout
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.received(request)
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.received(request)
            self._slots.release()

    def received(self, request: socket.socket) -> None:
        """The whole request is in (or the connection is over): no deadline any more."""
        with self._lock:
            self._deadlines.pop(request, None)

    def reap(self) -> None:
        """Shut the connections whose request is late (their handler then sees EOF)."""
        tick = min(0.25, self._request_timeout / 4)
        while not self._closing.wait(tick):
            now = time.monotonic()
            with self._lock:
                late = [s for s, deadline in self._deadlines.items() if deadline <= now]
                for s in late:
                    del self._deadlines[s]
            for s in late:
                self.cut_off += 1
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass(frozen=True)
class Limits:
    """What one server allows a client."""

    max_body: int = 1024 * 1024  # bytes of a request body
    request_timeout: float = 10.0  # seconds to send a whole request
    max_connections: int = 64  # served at once; more are refused with 503


@dataclass(frozen=True)
class _Config:
    routes: Mapping[tuple[str, str], Handler]
    not_found: Response
    limits: Limits
    observe: Observe | None
    methods: Mapping[str, tuple[str, ...]]  # path → the methods it has

    @classmethod
    def of(
        cls,
        routes: Mapping[tuple[str, str], Handler],
        not_found: Response,
        limits: Limits,
        observe: Observe | None,
    ) -> _Config:
        methods: dict[str, list[str]] = {}
        for method, path in routes:
            methods.setdefault(path, []).append(method)
        paths = {p: tuple(sorted(m)) for p, m in methods.items()}
        return cls(dict(routes), not_found, limits, observe, paths)


def _read_body(handler: BaseHTTPRequestHandler, limit: int) -> bytes | None:
    """The request body; None when it is too large or its length is not given."""
    if handler.command != "POST":
        return b""
    raw = handler.headers.get("Content-Length", "0")
    length = int(raw) if raw.strip().isdigit() else -1
    if length < 0 or length > limit:
        return None
    return handler.rfile.read(length)


def _respond(
    cfg: _Config, handler: BaseHTTPRequestHandler, method: str, path: str, query: str
) -> tuple[str | None, Response]:
    """(the route, when the path is known; the response)."""
    route = cfg.routes.get((method, path))
    if route is None:
        if path in cfg.methods:
            allow = ", ".join(cfg.methods[path])
            return path, Response(405, b"method not allowed\n", TEXT, {"Allow": allow})
        return None, cfg.not_found
    body = _read_body(handler, cfg.limits.max_body)
    server = handler.server
    if isinstance(server, _Server):
        server.received(handler.request)
    if body is None:
        return path, Response.text(413, "body too large\n")
    headers = {k.lower(): v for k, v in handler.headers.items()}
    try:
        return path, route(Request(method, path, query, headers, body))
    except Exception:  # noqa: BLE001 - one bad request must not stop the server
        return path, Response.text(500, "internal error\n")


def _send(handler: BaseHTTPRequestHandler, response: Response) -> None:
    handler.send_response(response.status)
    handler.send_header("Content-Type", response.content_type)
    handler.send_header("Content-Length", str(len(response.body)))
    for key, value in response.headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(response.body)


def _handler_class(cfg: _Config, name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = name
        sys_version = ""
        timeout = cfg.limits.request_timeout  # set on the socket before the request is read

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            started = time.perf_counter()
            path, _, query = self.path.partition("?")
            route, response = _respond(cfg, self, method, path, query)
            _send(self, response)
            if cfg.observe is not None:
                cfg.observe(route, method, response.status, time.perf_counter() - started)

    return Handler


class HttpServer:
    """Serves ``routes`` on ``host:port`` from a daemon thread once started."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[tuple[str, str], Handler],
        *,
        name: str = "atlas",
        not_found: Response = NOT_FOUND,
        limits: Limits = Limits(),
        observe: Observe | None = None,
    ) -> None:
        """Bind now (OSError if the address is taken); serve from ``start``."""
        bare = host.strip("[]")
        cfg = _Config.of(routes, not_found, limits, observe)
        server_cls = _Server6 if ":" in bare else _Server
        self._server = server_cls(
            (bare, port), _handler_class(cfg, name), limits.max_connections, limits.request_timeout
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{name}-http", daemon=True
        )
        self._reaper = threading.Thread(
            target=self._server.reap, name=f"{name}-reaper", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def busy_refusals(self) -> int:
        """Connections refused because ``max_connections`` were being served."""
        return self._server.busy_refusals

    @property
    def cut_off(self) -> int:
        """Connections shut because their request was not received in time."""
        return self._server.cut_off

    def start(self) -> None:
        self._thread.start()
        self._reaper.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
