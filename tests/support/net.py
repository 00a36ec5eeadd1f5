"""Free TCP ports on 127.0.0.1 for servers a test starts."""

from __future__ import annotations

import random
import socket
from collections.abc import Collection
from pathlib import Path


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


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_run(n: int, avoid: Collection[int] = (), tries: int = 200) -> int:
    """The first of ``n`` consecutive ports nothing listens on now (core replica N serves
    metrics on ``port + N - 1``; blueGreen replicas have preview ports), none in
    ``avoid``, all below the kernel's ephemeral range: a server that binds them later, while
    clients connect all around (connect() takes ephemeral ports, and prefers the
    even ones bind(0) leaves), could otherwise find one taken."""
    top = _ephemeral_low() - n
    for _ in range(tries):
        base = random.randrange(10000, top)
        if any(base <= p < base + n for p in avoid):
            continue
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise OSError(f"no {n} consecutive free ports on 127.0.0.1 below {top + n}")
