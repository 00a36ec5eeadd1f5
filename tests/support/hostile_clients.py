"""Hostile clients on 127.0.0.1: sockets held open idle (sent nothing) or half-open
(a request head begun, never finished), and the latency of ``/healthz`` meanwhile.
Shared by the tests and ``bench/hostile_clients.py``."""

from __future__ import annotations

import contextlib
import resource
import socket
import statistics
import time
from collections.abc import Iterator

HALF_OPEN = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never ends


def raise_open_files(wanted: int) -> int:
    """This process's soft RLIMIT_NOFILE, raised towards ``wanted`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < top:
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
        soft = top
    return soft


def _connect(port: int) -> socket.socket | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:  # refused, or the backlog is full: not held
        s.close()
        return None
    return s


@contextlib.contextmanager
def held(
    port: int, idle: int, half_open: int, within: float = 20.0
) -> Iterator[list[socket.socket]]:
    """``idle`` connections that send nothing and ``half_open`` ones that send a part
    of a request head, all held until the block ends (the server may close them).
    Those that do not connect within ``within`` seconds in all are left out."""
    socks: list[socket.socket] = []
    deadline = time.monotonic() + within
    try:
        for i in range(idle + half_open):
            if time.monotonic() > deadline:
                break
            s = _connect(port)
            if s is None:
                continue
            socks.append(s)
            if i >= idle:
                with contextlib.suppress(OSError):
                    s.sendall(HALF_OPEN)
        yield socks
    finally:
        for s in socks:
            s.close()


def health_once(port: int, path: str = "/healthz", timeout: float = 5.0) -> tuple[int, float]:
    """(status, seconds) of one ``GET path`` on a fresh connection; status 0 when the
    connection was refused, reset or timed out."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    except OSError:
        return 0, time.perf_counter() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, time.perf_counter() - started


def health_figures(port: int, n: int, path: str = "/healthz") -> dict[str, float | int]:
    """``n`` health probes one after another: p50/p99/max in ms and how many failed."""
    results = [health_once(port, path) for _ in range(n)]
    ms = sorted(seconds * 1000 for _, seconds in results)
    return {
        "probes": n,
        "failed": sum(1 for status, _ in results if status != 200),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(n - 1, int(n * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
    }
