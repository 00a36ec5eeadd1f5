"""The reconciler's HTTP endpoint: GET /metrics, GET /healthz, POST /hooks/git.

A push notification must carry an HMAC-SHA256 of the body under the shared
secret, as ``X-Atlas-Signature: sha256=<hex>`` (GitHub's ``X-Hub-Signature-256``
is accepted too). An unsigned or wrongly signed request gets 401 and triggers
nothing; so does a signature header that is not ASCII. A signed request that names
its delivery (``X-GitHub-Delivery``, or ``X-Atlas-Delivery``) is taken once: the same
id again within an hour gets 409 and triggers nothing (``deliveries``); an id over
128 characters gets 400. Bodies are capped at 1 MiB; request deadlines and the
connection limit are those of ``seams.httpserver``.

The delivery id is not covered by GitHub's signature, so the window stops a request
replayed as it was sent, not one replayed under a new id; what a replay can do is
schedule one more fetch of the branch, which changes nothing that git does not say.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from reconciler.watch.deliveries import MAX_ID_LENGTH, DeliveryWindow
from seams import build
from seams.httpserver import HttpServer, Limits, Request, Response

MAX_BODY = 1024 * 1024
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes | None, body: bytes, header: str | None) -> bool:
    if not secret or not header or not header.isascii():
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
        """Bind ``host:port`` (OSError if taken); serve from ``start``."""
        self.webhook_secret = webhook_secret
        self.refused = 0
        self.replayed = 0
        self.deliveries = DeliveryWindow()

        def get_metrics(_req: Request) -> Response:
            return Response(200, metrics(), METRICS_TYPE)

        def get_health(_req: Request) -> Response:
            ok = healthy()
            body = {"status": "ok" if ok else "stalled", "version": build.version()}
            return Response.json(200 if ok else 503, body)

        def post_hook(req: Request) -> Response:
            header = req.header("X-Atlas-Signature") or req.header("X-Hub-Signature-256")
            if not signature_ok(self.webhook_secret, req.body, header):
                self.refused += 1
                return Response.text(401, "missing or wrong signature\n")
            delivery = req.header("X-GitHub-Delivery") or req.header("X-Atlas-Delivery")
            if delivery is not None and len(delivery) > MAX_ID_LENGTH:
                self.refused += 1
                return Response.text(
                    400,
                    f"X-GitHub-Delivery: expected an id of at most {MAX_ID_LENGTH} characters\n",
                )
            if delivery is not None and not self.deliveries.first(delivery):
                self.replayed += 1
                return Response.text(409, "delivery already received; nothing scheduled\n")
            on_push("webhook")
            return Response.text(202, "reconcile scheduled\n")

        self.http = HttpServer(
            host,
            port,
            {
                ("GET", "/metrics"): get_metrics,
                ("GET", "/healthz"): get_health,
                ("POST", "/hooks/git"): post_hook,
            },
            name="atlas-reconciler",
            limits=Limits(max_body=MAX_BODY),
        )

    @property
    def port(self) -> int:
        return self.http.port

    def start(self) -> None:
        self.http.start()

    def stop(self) -> None:
        self.http.stop()
