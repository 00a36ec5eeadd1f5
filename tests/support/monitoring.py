"""Shared helpers of the monitoring tests: config builders and real HTTP servers
on 127.0.0.1 (a webhook receiver, a component with /metrics and /healthz, one that
hangs). The test clock is ``seams.testing.FakeClock``."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def rule(name: str = "r", metric: str = "m", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "metric": metric,
        "matchers": [],
        "op": ">",
        "threshold": 1,
        "forSeconds": 0,
        "keepFiringForSeconds": 0,
        "repeatIntervalSeconds": 3600,
        "severity": "warning",
        "channels": ["hook"],
        "labels": {},
        "annotations": {},
    }
    out.update(kw)
    return out


def webhook_channel(name: str = "hook", url: str = "http://127.0.0.1:9/", **kw: Any) -> dict:
    block = {"url": url, "timeoutSeconds": 2}
    block.update(kw.pop("webhook", {}))
    return {
        "name": name,
        "type": "webhook",
        "sendResolved": True,
        "templates": {},
        "webhook": block,
        **kw,
    }


def config(
    data: Path,
    *,
    rules: list[dict[str, Any]] | None = None,
    channels: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    port: int = 9102,
    interval: float = 10,
    scope: str = "user",
) -> dict[str, Any]:
    return {
        "configVersion": 1,
        "component": "monitoring",
        "environment": "test",
        "version": "0.1.0",
        "logLevel": "info",
        "dataDir": str(data),
        "database": {"path": str(data / "monitoring.db"), "busyTimeoutSeconds": 5},
        "listen": "127.0.0.1",
        "port": port,
        "intervalSeconds": interval,
        "externalURL": "http://atlas.test",
        "scope": scope,
        "maintenanceFile": str(data / "maintenance.json"),
        "platformDatabase": str(data / "atlas.db"),
        "components": components or [],
        "rules": rules if rules is not None else [rule()],
        "channels": channels if channels is not None else [webhook_channel()],
    }


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(json.dumps(cfg, indent=2))
    return path


def component(
    name: str,
    base: str | None,
    *,
    units: list[str] | None = None,
    timeout: float = 1.0,
    job: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "component": "core",
        "units": units or [f"atlas-{name}.service"],
        "job": job,
        "healthURL": f"{base}/healthz" if base else None,
        "metricsURL": f"{base}/metrics" if base else None,
        "timeoutSeconds": timeout,
    }


def wait_for(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", every: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


# ------------------------------------------------------------------ HTTP servers


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200  # what the server answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _State:
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # next answers; then `status`
    status: int = 200
    body: bytes = b"ok"
    metrics: str = ""
    health_status: int = 200
    hang: bool = False
    error_body: str = "receiver says no"  # "{path}" is replaced by the request's path
    lock: threading.Lock = field(default_factory=threading.Lock)


class TestServer:
    """A real HTTP server on 127.0.0.1 (port 0): records POSTs, serves /metrics and
    /healthz, and can be told to fail or to hang."""

    __test__ = False

    def __init__(self) -> None:
        state = self.state = _State()
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if state.hang:
                    release.wait(30)
                    return
                if self.path.startswith("/metrics"):
                    self._reply(200, state.metrics.encode(), "text/plain; version=0.0.4")
                elif self.path.startswith("/healthz"):
                    self._reply(state.health_status, b"{}", "application/json")
                else:
                    self._reply(404, b"nope")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with state.lock:
                    status = state.statuses.pop(0) if state.statuses else state.status
                    state.requests.append(Received(self.path, dict(self.headers), body, status))
                error = state.error_body.replace("{path}", self.path).encode()
                self._reply(status, state.body if status < 300 else error)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def requests(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.requests)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class HangingServer:
    """Accepts connections (the kernel does, through the backlog) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def metrics_text(
    requests_ok: int,
    requests_5xx: int,
    buckets: dict[str, int],
    items: dict[str, int],
    backlog: int = 4,
    dlq: int = 7,
) -> str:
    lines = [
        "# HELP atlas_http_requests_total Requests.",
        "# TYPE atlas_http_requests_total counter",
        f'atlas_http_requests_total{{route="/v1/items",status="200"}} {requests_ok}',
        f'atlas_http_requests_total{{route="/v1/items",status="503"}} {requests_5xx}',
        "# HELP atlas_http_request_duration_seconds Latency.",
        "# TYPE atlas_http_request_duration_seconds histogram",
    ]
    for le, count in buckets.items():
        lines.append(
            f'atlas_http_request_duration_seconds_bucket{{route="/v1/items",le="{le}"}} {count}'
        )
    total = buckets["+Inf"]
    lines += [
        f'atlas_http_request_duration_seconds_count{{route="/v1/items"}} {total}',
        f'atlas_http_request_duration_seconds_sum{{route="/v1/items"}} {total * 0.1}',
        "# HELP atlas_ingest_items_total Items.",
        "# TYPE atlas_ingest_items_total counter",
    ]
    for result, n in items.items():
        lines.append(f'atlas_ingest_items_total{{source="hn",result="{result}"}} {n}')
    lines += [
        "# HELP atlas_ingest_backlog Due sources.",
        "# TYPE atlas_ingest_backlog gauge",
        f"atlas_ingest_backlog {backlog}",
        "# HELP atlas_dlq_size DLQ.",
        "# TYPE atlas_dlq_size gauge",
        f"atlas_dlq_size {dlq}",
        "# HELP atlas_circuit_state Breakers.",
        "# TYPE atlas_circuit_state gauge",
        'atlas_circuit_state{host="a.example"} 0',
        'atlas_circuit_state{host="b.example"} 2',
        "# HELP atlas_ingest_source_errors Errors in a row.",
        "# TYPE atlas_ingest_source_errors gauge",
        'atlas_ingest_source_errors{source="hn"} 3',
    ]
    return "\n".join(lines) + "\n"


def source_failing(**kw: Any) -> dict[str, Any]:
    """The rule many agent tests share: a source failed three times in a row."""
    return rule("source-failing", "atlas_ingest_source_errors", op=">=", threshold=3, **kw)


def source_errors(**errors: int) -> str:
    lines = [
        "# HELP atlas_ingest_source_errors Errors in a row.",
        "# TYPE atlas_ingest_source_errors gauge",
    ]
    lines += [f'atlas_ingest_source_errors{{source="{s}"}} {n}' for s, n in errors.items()]
    return "\n".join(lines) + "\n"
