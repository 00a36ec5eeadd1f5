"""The FastAPI application: routes, JSON errors, request metrics.

Every error is JSON — ``{"error": {"status": N, "message": "...", ...}}`` — with a
4xx status for anything the client got wrong (400 bad parameter, 404 unknown item
or route, 405 wrong method) and 503 when the database cannot answer. A 500 would
be a bug; even then no traceback is sent.

Handlers are ``async``; every SQLite query runs in a worker thread (``pool``), never
on the event loop, so ``/healthz`` answers while searches run. ``Reader`` interrupts
any query that runs past its time budget (503 with the reason).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException

from atlas import maintenance
from atlas.api import params
from atlas.api.auth import TokenAuth, Tokens
from atlas.api.pool import QueryPool
from atlas.api.reader import ItemFilter, Reader
from atlas.api.settings import ApiSettings
from atlas.errors import StorageError
from atlas.httpmetrics import UNMATCHED, HttpMetrics
from seams import build
from seams.build import export_component_metrics

log = logging.getLogger("atlas.api")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


ITEMS_PARAMETERS = [
    _param(
        "source", "only these sources (repeatable)", {"type": "array", "items": {"type": "string"}}
    ),
    _param("since", "item time from (ISO 8601 or epoch seconds), inclusive", {"type": "string"}),
    _param("until", "item time before (ISO 8601 or epoch seconds), exclusive", {"type": "string"}),
    _param("q", 'full-text search: all words; "a phrase"; prefix*', {"type": "string"}),
    _param("cursor", "the nextCursor of the previous page", {"type": "string"}),
    _param("limit", "items per page (at most pageSize)", {"type": "integer", "minimum": 1}),
]
ITEMS_PARAMETER_NAMES = frozenset(p["name"] for p in ITEMS_PARAMETERS)


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message, **extra}}, status)


class RequestMetrics:
    """Pure ASGI middleware: count and time every request by route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(
                template, scope.get("method", "GET"), status[0], time.perf_counter() - started
            )


def create_app(
    settings: ApiSettings,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], float] = time.time,
    tokens: Tokens | None = None,
) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    export_component_metrics(registry)
    metrics = HttpMetrics(registry)
    reader = Reader(settings.database, settings.busy_timeout_s)
    pool = QueryPool()
    app = FastAPI(
        title="Atlas API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/v1/openapi.json",
    )
    app.state.reader = reader
    if tokens is not None and tokens.enabled:
        app.add_middleware(TokenAuth, tokens=tokens, registry=registry)
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: refusals counted too
    _error_handlers(app)
    _probe_routes(app, settings, (reader, pool), registry, clock)
    _data_routes(app, settings, reader, pool)
    return app


def _error_handlers(app: FastAPI) -> None:
    """Every error as JSON: 400 for bad parameters, the status of an HTTP error, 503
    when the database cannot answer, 500 (logged, no traceback sent) for a bug."""

    @app.exception_handler(RequestValidationError)
    async def bad_params(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "param": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
                "message": e.get("msg", "invalid"),
            }
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"param": None, "message": "invalid request"}
        where = f"{first['param']}: " if first["param"] else ""
        return error(400, f"{where}{first['message']}", problems=problems)

    @app.exception_handler(params.BadRequest)
    async def bad_request(request: Request, exc: params.BadRequest) -> JSONResponse:
        return error(400, str(exc), param=exc.param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        response = error(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return error(503, "database unavailable", reason=str(exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return error(500, "internal error")


def _probe_routes(
    app: FastAPI,
    settings: ApiSettings,
    db: tuple[Reader, QueryPool],
    registry: CollectorRegistry,
    clock: Callable[[], float],
) -> None:
    """/healthz (the process answers), /readyz (the database does, no maintenance),
    /metrics."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": build.version()}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        reader, pool = db
        ok, reason = await pool.probe(reader.readiness)
        window = maintenance.read(settings.maintenance_file, clock())
        if ok and window is not None:
            ok, reason = False, f"maintenance: {window.reason}"
        body: dict[str, Any] = {"status": "ready" if ok else "unavailable", "reason": reason}
        if window is not None:
            body["maintenance"] = {
                "reason": window.reason,
                "since": params.iso(window.since),
                "until": params.iso(window.until),
            }
        return JSONResponse(body, 200 if ok else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def item_filter(query: QueryParams, page_size: int) -> ItemFilter:
    """The ``/v1/items`` query, read by hand, not declared: FastAPI's parameter
    machinery cost a third of this hot route's time. params.* validates each value
    with a clear 400 (``params.BadRequest``)."""
    for name in query:
        if name not in ITEMS_PARAMETER_NAMES:
            raise params.BadRequest(f"{name}: unknown parameter", name)
    limit = params.parse_limit(query.get("limit"), page_size)
    sources = tuple(params.check_source(s) for s in query.getlist("source"))
    if len(sources) > 50:
        raise params.BadRequest("source: at most 50 sources at once", "source")
    since, until = query.get("since"), query.get("until")
    start = params.parse_time(since, "since") if since is not None else None
    end = params.parse_time(until, "until") if until is not None else None
    if start is not None and end is not None and start > end:
        raise params.BadRequest("since: later than until", "since")
    q, cursor = query.get("q"), query.get("cursor")
    match = params.fts_query(q) if q is not None else None
    after = params.decode_cursor(cursor) if cursor is not None else None
    return ItemFilter(sources, start, end, match, after, limit)


def _data_routes(app: FastAPI, settings: ApiSettings, reader: Reader, pool: QueryPool) -> None:
    """/v1/sources, /v1/items (a page at a time) and /v1/items/{id}."""

    @app.get("/v1/sources")
    async def list_sources() -> dict[str, Any]:
        return {"sources": await pool.query(reader.sources)}

    @app.get("/v1/items", openapi_extra={"parameters": ITEMS_PARAMETERS})
    async def list_items(request: Request) -> JSONResponse:
        wanted = item_filter(request.query_params, settings.page_size)
        page, last = await pool.query(lambda: reader.items(wanted))
        return JSONResponse(
            {"items": page, "nextCursor": params.encode_cursor(*last) if last else None}
        )

    @app.get("/v1/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, Any]:
        if not 0 < item_id < 2**63:
            raise StarletteHTTPException(404, f"no item {item_id}")
        item = await pool.query(lambda: reader.item(item_id))
        if item is None:
            raise StarletteHTTPException(404, f"no item {item_id}")
        return item
