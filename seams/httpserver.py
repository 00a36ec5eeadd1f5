"""The small HTTP server behind every ``/metrics``, ``/healthz`` and the git webhook.

A route table ``{(method, path): handler}``; a handler takes a ``Request`` and returns
a ``Response``. What a server facing a network needs is here once, for all of them
(the connections themselves are ``seams.httpconn``'s: read there how idle, slow and
too many clients are handled):

* every connection has a deadline for its whole request (``Limits.request_timeout``,
  counted from accept to the last byte of the body); waiting for it costs no thread;
* at most ``Limits.max_open`` connections are held (below the descriptor limit; the
  oldest unfinished one makes room for a new one) and ``Limits.max_connections``
  requests answered at once (503 beyond, at once; ``/healthz`` has a reserved worker);
* request bodies are capped (``Limits.max_body``; 413 beyond, and for a bad
  ``Content-Length`` on a POST); a head over 16 KiB is 431, a malformed one 400;
* a path that exists under another method gets 405 with ``Allow``, an unknown one the
  server's ``not_found`` response; a handler that raises gets 500 and the server goes
  on; access logs are not written (they would drown the journal);
* IPv4 and IPv6 (a host with ``:``), ``observe(route, method, status, seconds)`` for
  request metrics (``route`` is None for an unknown path).

One request per connection (HTTP/1.0 semantics): Prometheus and health probes open a
connection per request anyway, and it keeps a slow client from pinning a worker.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from seams.httpconn import BACKLOG, ConnectionLoop, Head, Limits, Received

__all__ = ["NOT_FOUND", "HttpServer", "Limits", "Request", "Response"]
HEALTH_PATHS = frozenset({"/healthz"})  # answered by a reserved worker when all are busy
DEFAULT_LIMITS = Limits()
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


def _respond(cfg: _Config, head: Head, body: bytes | None) -> tuple[str | None, Response]:
    """(the route, when the path is known; the response)."""
    path, _, query = head.target.partition("?")
    route = cfg.routes.get((head.method, path))
    if route is None:
        if path in cfg.methods:
            allow = ", ".join(cfg.methods[path])
            return path, Response(405, b"method not allowed\n", TEXT, {"Allow": allow})
        return None, cfg.not_found
    if body is None:
        return path, Response.text(413, "body too large\n")
    try:
        return path, route(Request(head.method, path, query, head.headers, body))
    except Exception:  # noqa: BLE001 - one bad request must not stop the server
        return path, Response.text(500, "internal error\n")


def _encode(name: str, response: Response) -> bytes:
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    lines = [
        f"HTTP/1.0 {response.status} {phrase}",
        f"Server: {name}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        *(f"{key}: {value}" for key, value in response.headers.items()),
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


def _answerer(cfg: _Config, name: str) -> Callable[[Received], bytes]:
    def answer(received: Received) -> bytes:
        if received.head is None:
            status = received.status or 400
            return _encode(name, Response.text(status, f"{HTTPStatus(status).phrase.lower()}\n"))
        started = time.perf_counter()
        route, response = _respond(cfg, received.head, received.body)
        if cfg.observe is not None:
            cfg.observe(route, received.head.method, response.status, time.perf_counter() - started)
        return _encode(name, response)

    return answer


def _is_health(head: Head) -> bool:
    return head.method == "GET" and head.target.partition("?")[0] in HEALTH_PATHS


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


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
        limits: Limits = DEFAULT_LIMITS,
        observe: Observe | None = None,
    ) -> None:
        """Bind now (OSError if the address is taken); serve from ``start``."""
        cfg = _Config.of(routes, not_found, limits, observe)
        self._sock = _listen(host.strip("[]"), port)
        self._port = int(self._sock.getsockname()[1])
        self._loop = ConnectionLoop(self._sock, limits, _answerer(cfg, name), _is_health, name)
        self._thread = threading.Thread(target=self._loop.run, name=f"{name}-http", daemon=True)

    @property
    def port(self) -> int:
        return self._port

    @property
    def busy_refusals(self) -> int:
        """Requests refused with 503 because ``max_connections`` were being answered."""
        return self._loop.busy_refusals

    @property
    def cut_off(self) -> int:
        """Connections shut because their request was not received in time."""
        return self._loop.cut_off

    @property
    def dropped(self) -> int:
        """Unfinished connections closed to make room (``max_open`` or no descriptors)."""
        return self._loop.dropped

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.stop()
        if self._thread.is_alive():
            self._thread.join(10)
        else:
            self._sock.close()
