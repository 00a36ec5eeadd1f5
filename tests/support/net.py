"""Free TCP ports on 127.0.0.1 for servers a test starts."""

from __future__ import annotations

import socket


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports nothing listens on now (held together while picked)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(int(s.getsockname()[1]))
    for s in socks:
        s.close()
    return ports


def free_port() -> int:
    return free_ports(1)[0]


def free_port_run(n: int, tries: int = 50) -> int:
    """The first of ``n`` consecutive free ports (core replica N serves metrics on
    ``port + N - 1``): each of them bound together once before it is returned."""
    for _ in range(tries):
        first = free_port()
        socks = []
        try:
            for port in range(first, first + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return first
    raise RuntimeError(f"no run of {n} free ports found in {tries} tries")
