"""The worker's small HTTP server: ``/metrics`` (Prometheus text) and ``/healthz``
(the loop made progress recently; the worker's detail may say "degraded"), on
``metrics.listen``:``metrics.port + N - 1``.
A route table on ``seams.httpserver.HttpServer`` (serving from a daemon thread; the
socket is bound before readiness is reported), with every request counted and
timed in the worker's own registry (``atlas.httpmetrics``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from atlas.core.metrics import CoreMetrics
from atlas.httpmetrics import UNMATCHED
from seams import build
from seams.httpserver import JSON, Handler, HttpServer, Request, Response

Health = Callable[[], tuple[bool, dict[str, Any]]]
NOT_FOUND = Response(404, b'{"error": {"status": 404, "message": "not found"}}', JSON)


def routes(metrics: CoreMetrics, health: Health) -> dict[tuple[str, str], Handler]:
    def prometheus(_: Request) -> Response:
        return Response(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)

    def healthz(_: Request) -> Response:
        ok, detail = health()
        return Response.json(
            200 if ok else 503,
            {"status": "ok" if ok else "stalled", "version": build.version(), **detail},
        )

    return {("GET", "/metrics"): prometheus, ("GET", "/healthz"): healthz}


def start(listen: str, port: int, metrics: CoreMetrics, health: Health) -> HttpServer:
    """Bind (OSError if the address is taken) and serve in a background thread; the
    caller stops it."""

    def observe(route: str | None, method: str, status: int, seconds: float) -> None:
        metrics.http.observe(route or UNMATCHED, method, status, seconds)

    server = HttpServer(
        listen,
        port,
        routes(metrics, health),
        name="atlas-core",
        not_found=NOT_FOUND,
        observe=observe,
    )
    server.start()
    return server
