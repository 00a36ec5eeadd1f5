"""The HTTP seam: GET for health checks and scrapes, POST for webhooks.

``Http`` is the protocol the rest of the agent sees; ``HttpxHttp`` implements it
with httpx. Every call has a *total* deadline (httpx's own timeouts are per
operation, so a server trickling one byte a second would never time out) and a
body size cap. Transport problems raise ``ProbeFailure`` (a temporary failure);
an HTTP status is a response, not an error. Redirects are not followed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from atlas.errors import ProbeFailure

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Http(Protocol):
    def get(
        self, url: str, *, timeout: float, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> HttpResponse: ...

    def post(
        self,
        url: str,
        body: bytes,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = 1024 * 1024,
    ) -> HttpResponse: ...


class HttpxHttp:
    """``Http`` over one pooled ``httpx.Client``.

    ``trust_env`` honours HTTP(S)_PROXY / NO_PROXY and SSL_CERT_FILE: wanted for
    webhooks to the outside, not for probes of components on this host.
    """

    def __init__(self, *, trust_env: bool = False, user_agent: str = "atlas-monitoring") -> None:
        self._client = httpx.Client(
            trust_env=trust_env,
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, *, timeout: float, max_bytes: int = DEFAULT_MAX_BYTES) -> HttpResponse:
        return self._send("GET", url, None, timeout, {}, max_bytes)

    def post(
        self,
        url: str,
        body: bytes,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = 1024 * 1024,
    ) -> HttpResponse:
        return self._send("POST", url, body, timeout, dict(headers or {}), max_bytes)

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        timeout: float,
        headers: dict[str, str],
        max_bytes: int,
    ) -> HttpResponse:
        deadline = time.monotonic() + timeout
        try:
            request = self._client.build_request(
                method, url, content=body, headers=headers, timeout=httpx.Timeout(timeout)
            )
            response = self._client.send(request, stream=True)
            try:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ProbeFailure(f"response larger than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise ProbeFailure(f"no complete answer within {timeout:g}s")
                    chunks.append(chunk)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise ProbeFailure(f"no answer within {timeout:g}s ({type(exc).__name__})") from exc
        except httpx.InvalidURL as exc:
            raise ProbeFailure(f"invalid URL: {exc}") from exc
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise ProbeFailure(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise ProbeFailure(f"{type(exc).__name__}: {exc}") from exc
        if time.monotonic() > deadline:
            raise ProbeFailure(f"no complete answer within {timeout:g}s")
        return HttpResponse(response.status_code, b"".join(chunks), dict(response.headers))
