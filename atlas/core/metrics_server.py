"""The worker's small HTTP server: ``/metrics`` (Prometheus text) and ``/healthz``
(the loop made progress recently), on ``metrics.listen``:``metrics.port + N - 1``.
Runs in a daemon thread; the socket is bound before readiness is reported."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from atlas.core.metrics import CoreMetrics
from atlas.httpmetrics import UNMATCHED

Health = Callable[[], tuple[bool, dict[str, Any]]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def start(listen: str, port: int, metrics: CoreMetrics, health: Health) -> ThreadingHTTPServer:
    """Bind and serve in a background thread; the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "atlas-core"

        def do_GET(self) -> None:
            started = time.perf_counter()
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                route, status = path, 200
                body, ctype = generate_latest(metrics.registry), CONTENT_TYPE_LATEST
            elif path == "/healthz":
                ok, detail = health()
                route, status = path, 200 if ok else 503
                body = json.dumps({"status": "ok" if ok else "stalled", **detail}).encode()
                ctype = "application/json"
            else:
                route, status = UNMATCHED, 404
                body, ctype = (
                    b'{"error": {"status": 404, "message": "not found"}}',
                    ("application/json"),
                )
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            metrics.http.observe(route, "GET", status, time.perf_counter() - started)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server_class: type[_Server] = _Server6 if ":" in listen else _Server
    server = server_class((listen.strip("[]"), port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server
