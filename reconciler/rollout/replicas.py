"""The seam a rollout reaches API replicas through: GET a path on one replica's own
(preview) port on 127.0.0.1, with a timeout. ``HttpxReplicas`` is the real one; nothing
answering is an ``OSError``. ``enable_request_migration`` asks the kernel to hand the
connections queued on a closing SO_REUSEPORT listener to another one of its group."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


class Replicas(Protocol):
    def get(self, port: int, path: str, timeout: float) -> tuple[int, str]:
        """(status, body) of GET ``path`` on 127.0.0.1:``port``; OSError if none answers."""
        ...


class HttpxReplicas:
    def __init__(self) -> None:
        self._client: Any = None  # made on first use: most reconciles roll nothing out

    def get(self, port: int, path: str, timeout: float) -> tuple[int, str]:
        import httpx

        if self._client is None:
            self._client = httpx.Client(follow_redirects=False, trust_env=False)
        try:
            reply = self._client.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)
        except httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        return reply.status_code, reply.text


def enable_request_migration(knob: Path = MIGRATE_REQ) -> str:
    """Turn on ``net.ipv4.tcp_migrate_req`` (per network namespace); what was done."""
    try:
        if knob.read_text().strip() == "1":
            return "tcp_migrate_req already on"
        knob.write_text("1\n")
    except FileNotFoundError:
        return "no tcp_migrate_req in this kernel: a stopping replica may reset queued connections"
    except OSError as exc:
        return (
            f"cannot turn on tcp_migrate_req ({exc.strerror or exc}): queued connections may reset"
        )
    return "tcp_migrate_req turned on"
