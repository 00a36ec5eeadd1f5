"""``atlas api``: uvicorn serving the app on a socket this process binds itself,
with SO_REUSEPORT so that several replicas (and an old and a new version during a
rollout) listen on the same port at once. READY=1 goes out once uvicorn accepts
connections; SIGTERM drains open requests and exits 0; WATCHDOG=1 pings go out
from uvicorn's own loop when systemd asks for them."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from atlas import logs
from atlas.api import settings as api_settings
from atlas.api.app import create_app
from atlas.api.auth import Tokens
from atlas.api.connections import KEEP_ALIVE_S, MAX_HEAD, Guard, protocol_class
from atlas.api.tls import server_context
from atlas.errors import AtlasError
from seams.notify import Notifier
from seams.stopping import GRACE_S, arm_deadline

BACKLOG = 2048


def bind(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket shared through SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto says TCP, and without it every keep-alive response waits ~40 ms on
    # Nagle + delayed ACK. NODELAY on the listener is inherited as well.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise AtlasError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def uvicorn_config(
    app: Any, guard: Guard, log_level: str = "info", tls: ssl.SSLContext | None = None
) -> uvicorn.Config:
    """How uvicorn serves the API: no access log, and every connection under ``guard``.
    asyncio accepts up to ``backlog`` connections at a time before any is counted
    against the cap, so the backlog is kept within the descriptors' reserve. With
    ``tls`` it serves HTTPS with that context (built by ``atlas.api.tls``)."""
    return uvicorn.Config(
        app,
        log_config=None,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=int(GRACE_S),  # then open requests are cancelled
        timeout_keep_alive=KEEP_ALIVE_S,
        http=protocol_class(guard),
        h11_max_incomplete_event_size=MAX_HEAD,
        backlog=guard.backlog,
        ssl_context_factory=None if tls is None else (lambda config, default: tls),
    )


class GuardedServer(uvicorn.Server):
    """uvicorn with ``guard`` told of asyncio's failed accepts (one line per episode)."""

    def __init__(self, config: uvicorn.Config, guard: Guard) -> None:
        super().__init__(config)
        self.guard = guard

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(self.guard.exception_handler)
        await super().startup(sockets=sockets)


class NotifyingServer(GuardedServer):
    def __init__(
        self, config: uvicorn.Config, guard: Guard, notifier: Notifier, status: str
    ) -> None:
        super().__init__(config, guard)
        self.notifier = notifier
        self.status_text = status
        interval = notifier.watchdog_interval
        self.ping_every = None if interval is None else max(1, int(interval * 10))  # ticks

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self.notifier.ready(self.status_text)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM:  # systemd's stop: drain and exit 0 (uvicorn would re-raise)
            self.should_exit = True
            arm_deadline()
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:  # called every 0.1 s
        if self.ping_every is not None and counter % self.ping_every == 0:
            self.notifier.watchdog()
        result: bool = await super().on_tick(counter)
        return result

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.notifier.stopping()
        await super().shutdown(sockets=sockets)


def wait_until_ready(
    app: FastAPI, notifier: Notifier, log: logging.Logger, sleep: Callable[[float], None]
) -> None:
    """Before a blueGreen replica joins the shared port: a replica that is not ready
    would be handed connections by the kernel and fail them. It waits (saying why in
    STATUS=) until it is, or until the rollout gives up and stops it."""
    said = ""
    while True:
        ok, reason = app.state.reader.readiness()
        if ok:
            return
        if reason != said:
            log.warning("not ready, not joining the shared port yet: %s", reason)
            notifier.status(f"not ready: {reason}")
            said = reason
        sleep(0.25)


def _tls_context(
    settings: api_settings.ApiSettings, environ: Mapping[str, str]
) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    runtime = environ.get("RUNTIME_DIRECTORY")
    return server_context(settings.tls, environ, Path(runtime) if runtime else None)


def run(config: Path, instance: int | None, env: Mapping[str, str] | None = None) -> int:
    settings = api_settings.load(config)
    n = settings.check_instance(instance)
    log = logs.setup(settings.log_level, "api")
    environ = env if env is not None else os.environ
    notifier = Notifier.from_environ(environ)
    tokens = Tokens.from_env(settings.tokens, settings.protect_metrics, environ)
    tls = _tls_context(settings, environ)
    app = create_app(settings, tokens=tokens)
    preview = settings.preview(n)
    if preview is not None:
        wait_until_ready(app, notifier, log, time.sleep)
    guard = Guard()
    sock = bind(settings.listen, settings.port, guard.backlog)
    sockets = [sock]
    if preview is not None:  # blueGreen measures each replica on its own port
        try:
            sockets.append(bind("127.0.0.1", preview, guard.backlog))
        except AtlasError:
            sock.close()
            raise
    scheme = "https" if tls else "http"
    server = NotifyingServer(
        uvicorn_config(app, guard, settings.log_level, tls),
        guard,
        notifier,
        f"replica {n} serving on {scheme}://{settings.listen}:{settings.port}",
    )
    log.info(
        "replica %d serving on %s://%s:%d (at most %d connections, %d token(s))",
        n,
        scheme,
        settings.listen,
        settings.port,
        guard.cap,
        len(tokens.names),
    )
    server.run(sockets=sockets)
    return 0
