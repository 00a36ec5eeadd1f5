"""Bearer tokens of the API: who may call which route.

Each configured token keeps only an HMAC-SHA256 digest of its value, keyed with a
random key made when the process starts; a presented token (``Authorization:
Bearer …`` or ``X-Auth-Token``) is digested the same way and compared with every
configured digest through ``hmac.compare_digest`` — the plain values are never kept
and never compared. ``/healthz`` and ``/readyz`` stay open; ``/metrics`` needs the
``metrics`` scope when ``protectMetrics`` is on; every other route needs ``read``.
A missing or unknown token is a 401 with ``WWW-Authenticate: Bearer realm="atlas"``,
a token without the route's scope a 403. With no tokens configured nothing is
checked (the API is as open as where it listens). Requests are counted per token
name (``atlas_api_requests_by_token_total{token}``), never per value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from atlas.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
CHALLENGE = 'Bearer realm="atlas"'
MAX_TOKEN = 4096  # longer headers are not tokens of ours


@dataclass(frozen=True)
class TokenConfig:
    """A token as api.json names it: its name, scopes and the env variable of its value."""

    name: str
    scopes: tuple[str, ...]
    env: str


@dataclass(frozen=True)
class _Known:
    name: str
    scopes: frozenset[str]
    digest: bytes


class Tokens:
    """The configured tokens as keyed digests; ``match`` finds a presented one."""

    def __init__(self, values: Mapping[str, tuple[tuple[str, ...], str]], protect_metrics: bool):
        self._key = os.urandom(32)
        self.protect_metrics = protect_metrics
        self._known = tuple(
            _Known(name, frozenset(scopes), self._digest(value.encode()))
            for name, (scopes, value) in values.items()
        )

    @classmethod
    def from_env(
        cls, tokens: tuple[TokenConfig, ...], protect_metrics: bool, env: Mapping[str, str]
    ) -> Tokens:
        values = {}
        for t in tokens:
            value = env.get(t.env)
            if not value:
                raise ConfigError(
                    f"api token {t.name!r}: its value is expected in the env variable {t.env} "
                    "(the api's env file), which is not set"
                )
            values[t.name] = (t.scopes, value)
        return cls(values, protect_metrics)

    @property
    def enabled(self) -> bool:
        return bool(self._known)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self._known)

    def _digest(self, value: bytes) -> bytes:
        return hmac.new(self._key, value, hashlib.sha256).digest()

    def match(self, presented: bytes) -> _Known | None:
        """The token whose digest equals the presented one's (every digest compared)."""
        digest = self._digest(presented)
        found = None
        for known in self._known:
            if hmac.compare_digest(known.digest, digest) and found is None:
                found = known
        return found

    def needed_scope(self, path: str) -> str | None:
        if path in OPEN_PATHS:
            return None
        if path == "/metrics":
            return "metrics" if self.protect_metrics else None
        return "read"


def presented_token(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The token of ``Authorization: Bearer …`` or ``X-Auth-Token``, if any."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()[:MAX_TOKEN]
        elif name == b"x-auth-token" and value.strip():
            return value.strip()[:MAX_TOKEN]
    return None


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"status": status, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", CHALLENGE.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """Pure ASGI middleware: a request passes with a token that has its route's scope."""

    def __init__(self, app: ASGIApp, tokens: Tokens, registry: CollectorRegistry) -> None:
        self.app = app
        self.tokens = tokens
        self.by_token = Counter(
            "atlas_api_requests_by_token_total",
            "API requests by the name of the token they carried",
            ["token"],
            registry=registry,
        )
        for name in tokens.names:
            self.by_token.labels(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens.enabled:
            await self.app(scope, receive, send)
            return
        needed = self.tokens.needed_scope(scope.get("path", ""))
        presented = presented_token(scope.get("headers", []))
        token = self.tokens.match(presented) if presented is not None else None
        if token is not None:
            self.by_token.labels(token.name).inc()
        if needed is None:
            await self.app(scope, receive, send)
        elif presented is None:
            await _refuse(
                send, 401, "a token is required (Authorization: Bearer … or X-Auth-Token)"
            )
        elif token is None:
            await _refuse(send, 401, "unknown token")
        elif needed not in token.scopes:
            await _refuse(send, 403, f"token {token.name!r} lacks the scope {needed!r}")
        else:
            await self.app(scope, receive, send)
