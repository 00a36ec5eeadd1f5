"""The small HTTP server behind every ``/metrics``, ``/healthz`` and the git webhook.

A route table ``{(method, path): handler}``; a handler takes a ``Request`` and returns
a ``Response``. What a server facing a network needs is here once, for all of them:

* every connection has a deadline for its request (``request_timeout``): a client that
  opens a socket and sends nothing, or trickles its headers, is cut off instead of
  holding a thread forever;
* at most ``max_connections`` are served at once; one more is answered 503 and closed
  at once, so a flood cannot exhaust threads or descriptors;
* request bodies are capped (``max_body``; 413 beyond, and for a missing or bad
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
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], slots: int
    ) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self.busy_refusals = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.busy_refusals += 1
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass(frozen=True)
class _Config:
    routes: Mapping[tuple[str, str], Handler]
    not_found: Response
    max_body: int
    observe: Observe | None
    name: str


def _handler_class(cfg: _Config, request_timeout: float) -> type[BaseHTTPRequestHandler]:
    methods: dict[str, list[str]] = {}
    for method, path in cfg.routes:
        methods.setdefault(path, []).append(method)

    class Handler(BaseHTTPRequestHandler):
        server_version = cfg.name
        sys_version = ""
        timeout = request_timeout  # applied to the socket before the request is read

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _body(self) -> bytes | None:
            if self.command != "POST":
                return b""
            raw = self.headers.get("Content-Length", "0")
            length = int(raw) if raw.strip().isdigit() else -1
            if length < 0 or length > cfg.max_body:
                return None
            return self.rfile.read(length)

        def _respond(self, method: str, path: str, query: str) -> tuple[str | None, Response]:
            handler = cfg.routes.get((method, path))
            if handler is None:
                if path in methods:
                    allow = ", ".join(sorted(methods[path]))
                    return path, Response(405, b"method not allowed\n", TEXT, {"Allow": allow})
                return None, cfg.not_found
            body = self._body()
            if body is None:
                return path, Response.text(413, "body too large\n")
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(method, path, query, headers, body)
            try:
                return path, handler(request)
            except Exception:  # noqa: BLE001 - one bad request must not stop the server
                return path, Response.text(500, "internal error\n")

        def _dispatch(self, method: str) -> None:
            started = time.perf_counter()
            path, _, query = self.path.partition("?")
            route, response = self._respond(method, path, query)
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(response.body)
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
        max_body: int = 1024 * 1024,
        request_timeout: float = 10.0,
        max_connections: int = 64,
        observe: Observe | None = None,
    ) -> None:
        """Bind now (OSError if the address is taken); serve from ``start``."""
        bare = host.strip("[]")
        cfg = _Config(dict(routes), not_found, max_body, observe, name)
        server_cls = _Server6 if ":" in bare else _Server
        self._server = server_cls(
            (bare, port), _handler_class(cfg, request_timeout), max_connections
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{name}-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def busy_refusals(self) -> int:
        """Connections refused because ``max_connections`` were being served."""
        return self._server.busy_refusals

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
