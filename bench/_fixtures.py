"""Shared by the monitoring benchmarks: a realistic /metrics page and local HTTP
components serving it."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SOURCES = 40


def metrics_page(component: int, tick: int = 0) -> str:
    """About 220 series, as an Atlas service would show them: HTTP counters and a
    latency histogram by route (traffic every tick), ingestion counters (one source
    fetched per tick) and errors per source, backlog, DLQ, circuit breakers, and
    prometheus-client's standard process and GC metrics."""
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
    for s in range(SOURCES):  # a source is fetched every few minutes: one per tick here
        fetched = tick // SOURCES + (1 if s < tick % SOURCES else 0)
        out.append(
            f'atlas_ingest_items_total{{source="feed-{s:03d}",result="new"}} {fetched * 5 + s}'
        )
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
    out += STANDARD.format(cpu=0.5 + tick * 0.01, rss=52_000_000 + tick * 4096).splitlines()
    return "\n".join(out) + "\n"


# What prometheus-client's default registry adds to every Python process's page.
STANDARD = """\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 1843.0
python_gc_objects_collected_total{{generation="1"}} 320.0
python_gc_objects_collected_total{{generation="2"}} 12.0
# HELP python_gc_objects_uncollectable_total Uncollectable objects found during GC
# TYPE python_gc_objects_uncollectable_total counter
python_gc_objects_uncollectable_total{{generation="0"}} 0.0
python_gc_objects_uncollectable_total{{generation="1"}} 0.0
python_gc_objects_uncollectable_total{{generation="2"}} 0.0
# HELP python_gc_collections_total Number of times this generation was collected
# TYPE python_gc_collections_total counter
python_gc_collections_total{{generation="0"}} 120.0
python_gc_collections_total{{generation="1"}} 10.0
python_gc_collections_total{{generation="2"}} 1.0
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{{implementation="CPython",major="3",minor="11",patchlevel="7",version="3.11.7"}} 1.0
# HELP process_virtual_memory_bytes Virtual memory size in bytes.
# TYPE process_virtual_memory_bytes gauge
process_virtual_memory_bytes 2.6e+08
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes {rss}
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e+09
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total {cpu}
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 12.0
# HELP process_max_fds Maximum number of open file descriptors.
# TYPE process_max_fds gauge
process_max_fds 1024.0
"""


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
