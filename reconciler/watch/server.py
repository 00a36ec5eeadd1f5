"""The reconciler's HTTP endpoint: GET /metrics, GET /healthz, POST /hooks/git.

A push notification must carry an HMAC-SHA256 of the body under the shared
secret, as ``X-Atlas-Signature: sha256=<hex>`` (GitHub's ``X-Hub-Signature-256``
is accepted too). An unsigned or wrongly signed request gets 401 and triggers
nothing. Bodies are capped at 1 MiB.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes | None, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body), header.strip())


class ReconcilerServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: Callable[[], bytes],
        healthy: Callable[[], bool],
        on_push: Callable[[str], None],
        webhook_secret: bytes | None,
    ) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "atlas-reconciler"

            def log_message(self, format: str, *args: object) -> None:
                return  # access logs would drown the journal

            def _send(
                self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, metrics(), "text/plain; version=0.0.4; charset=utf-8")
                elif self.path == "/healthz":
                    ok = healthy()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"reconcile loop stalled\n")
                else:
                    self._send(404, b"not found\n")

            def do_POST(self) -> None:
                if self.path != "/hooks/git":
                    self._send(404, b"not found\n")
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY:
                    self._send(413, b"body too large\n")
                    return
                body = self.rfile.read(length)
                header = self.headers.get("X-Atlas-Signature") or self.headers.get(
                    "X-Hub-Signature-256"
                )
                if not signature_ok(owner.webhook_secret, body, header):
                    owner.refused += 1
                    self._send(401, b"missing or wrong signature\n")
                    return
                on_push("webhook")
                self._send(202, b"reconcile scheduled\n")

        self.webhook_secret = webhook_secret
        self.refused = 0
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="reconciler-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
