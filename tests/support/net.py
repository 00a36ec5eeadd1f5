"""Free TCP ports on 127.0.0.1 for servers a test starts."""

from __future__ import annotations

import socket
from collections.abc import Collection


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


def free_port_run(n: int, avoid: Collection[int] = (), tries: int = 50) -> int:
    """The first of ``n`` consecutive ports nothing listens on now, none in ``avoid``
    (ports picked for servers not started yet)."""
    for _ in range(tries):
        base = free_port()
        if base + n - 1 > 65535 or (avoid and any(base <= p < base + n for p in avoid)):
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
    raise OSError(f"no {n} consecutive free ports on 127.0.0.1")
