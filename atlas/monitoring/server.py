"""The agent's HTTP endpoint: ``/metrics`` for Prometheus, ``/healthz`` (and ``/``)
for the reconciler's health probe. A route table on ``seams.httpserver.HttpServer``,
which owns the limits (request deadline, connection cap) every endpoint shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from seams import build
from seams.httpserver import Handler, HttpServer, Request, Response

HealthFn = Callable[[], tuple[bool, dict[str, Any]]]
NOT_FOUND = Response.text(404, "not found: try /metrics or /healthz\n")


def routes(render_metrics: Callable[[], bytes], health: HealthFn) -> dict[tuple[str, str], Handler]:
    def metrics(_: Request) -> Response:
        return Response(200, render_metrics(), CONTENT_TYPE_LATEST)

    def healthz(_: Request) -> Response:
        ok, detail = health()
        return Response.json(
            200 if ok else 503,
            {"status": "ok" if ok else "unhealthy", "version": build.version(), **detail},
        )

    return {("GET", "/metrics"): metrics, ("GET", "/healthz"): healthz, ("GET", "/"): healthz}


def metrics_server(
    host: str, port: int, render_metrics: Callable[[], bytes], health: HealthFn
) -> HttpServer:
    """Bound now (OSError if the address is taken); serving once started."""
    return HttpServer(
        host, port, routes(render_metrics, health), name="atlas-monitoring", not_found=NOT_FOUND
    )
