"""Shared by the monitoring benchmarks: a realistic /metrics page and local HTTP
components serving it."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SOURCES = 40


def metrics_page(component: int, tick: int = 0) -> str:
    """About 150 series: HTTP counters and a latency histogram by route, ingestion
    counters and errors per source, backlog, DLQ, circuit breakers."""
    out = ["# HELP atlas_http_requests_total Requests.", "# TYPE atlas_http_requests_total counter"]
    routes = ["/v1/items", "/v1/items/{id}", "/v1/sources", "/healthz", "/readyz"]
    for r in routes:
        for status in ("200", "404", "500"):
            n = (tick + 1) * (100 if status == "200" else 3)
            out.append(f'atlas_http_requests_total{{route="{r}",status="{status}"}} {n}')
    out += [
        "# HELP atlas_http_request_duration_seconds Latency.",
        "# TYPE atlas_http_request_duration_seconds histogram",
    ]
    for r in routes:
        total = 0
        for le, share in (
            ("0.005", 20),
            ("0.01", 30),
            ("0.05", 30),
            ("0.1", 10),
            ("0.5", 8),
            ("1", 2),
            ("+Inf", 0),
        ):
            total += share * (tick + 1)
            out.append(
                f'atlas_http_request_duration_seconds_bucket{{route="{r}",le="{le}"}} {total}'
            )
        out.append(f'atlas_http_request_duration_seconds_count{{route="{r}"}} {total}')
        out.append(f'atlas_http_request_duration_seconds_sum{{route="{r}"}} {total * 0.02}')
    out += ["# HELP atlas_ingest_items_total Items.", "# TYPE atlas_ingest_items_total counter"]
    for s in range(SOURCES):
        out.append(f'atlas_ingest_items_total{{source="feed-{s:03d}",result="new"}} {tick * 5 + s}')
        out.append(f'atlas_ingest_items_total{{source="feed-{s:03d}",result="error"}} {s % 3}')
    out += [
        "# HELP atlas_ingest_source_errors Errors in a row.",
        "# TYPE atlas_ingest_source_errors gauge",
    ]
    for s in range(SOURCES):
        out.append(f'atlas_ingest_source_errors{{source="feed-{s:03d}"}} {s % 5}')
    out += [
        "# HELP atlas_ingest_backlog Due.",
        "# TYPE atlas_ingest_backlog gauge",
        f"atlas_ingest_backlog {component}",
        "# HELP atlas_dlq_size DLQ.",
        "# TYPE atlas_dlq_size gauge",
        f"atlas_dlq_size {component * 10}",
        "# HELP atlas_circuit_state Breakers.",
        "# TYPE atlas_circuit_state gauge",
    ]
    for h in range(10):
        out.append(f'atlas_circuit_state{{host="host{h}.example"}} {1 if h == component else 0}')
    return "\n".join(out) + "\n"


class Components:
    """``count`` HTTP components on 127.0.0.1 serving /metrics and /healthz."""

    def __init__(self, count: int = 5) -> None:
        self.servers: list[ThreadingHTTPServer] = []
        self.ticks = [0] * count
        for i in range(count):
            self.servers.append(self._serve(i))

    def _serve(self, i: int) -> ThreadingHTTPServer:
        ticks = self.ticks

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    ticks[i] += 1
                    body = metrics_page(i, ticks[i]).encode()
                else:
                    body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.servers[i].server_address[1]}"

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()
