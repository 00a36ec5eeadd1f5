"""HTTP fetching with httpx: the one module that talks to the network.

Per fetch: a timeout for each step (connect, every read) and one deadline of twice
the timeout for the whole fetch — connect, headers, body and every redirect — kept by
the sockets themselves (``atlas.core.deadline``), so a server trickling its headers
cannot hold a worker; a shutdown cuts a fetch short (``FetchCancelled``). The body is
read raw and decoded here with a cap on every step (``atlas.core.decoding``: gzip or
deflate, one encoding, asked for by Accept-Encoding), its size checked against
Content-Length and again as it decodes; redirects are followed here, up to the limit,
without reading their bodies. A descriptive User-Agent, and conditional GET from the
stored ETag/Last-Modified. httpx's errors and unusable statuses become the
platform's: ``FetchUnavailable`` (temporary: network, 5xx, 408, 429 — with the
server's Retry-After), its ``FetchTimedOut`` (a timeout or the deadline: a stalled
source) or ``FetchRejected`` (permanent: other 4xx, too large, undecodable, too many
redirects, unsupported URL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from atlas.core.caching import retry_after
from atlas.core.deadline import Budget, within
from atlas.core.decoding import ACCEPT_ENCODING, Decoder, decoder_for
from atlas.core.model import Response
from atlas.core.netpolicy import ALLOW_PRIVATE, Access, AddressPolicy, PolicyTransport
from atlas.core.settings import FetchSettings
from atlas.errors import FetchRejected, FetchTimedOut, FetchUnavailable

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5, */*;q=0.1"
TEMPORARY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class Fetcher:
    """A pooled HTTP client; safe to share between worker threads. ``stopping`` (the
    worker's shutdown) cuts the fetches in flight short."""

    def __init__(
        self,
        settings: FetchSettings,
        transport: httpx.BaseTransport | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.stopping = stopping
        limits = httpx.Limits(
            max_connections=max(10, settings.concurrency * 2),
            max_keepalive_connections=max(10, settings.concurrency * 2),
        )
        policy = AddressPolicy(settings.allowed_networks)
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            follow_redirects=False,  # followed in ``get``, without reading their bodies
            timeout=settings.timeout_s,
            limits=limits,
            # checked addresses, over sockets that keep to the fetch's deadline
            transport=transport or PolicyTransport(policy, limits),
            trust_env=False,
        )

    def close(self) -> None:
        self.client.close()

    def get(
        self,
        url: str,
        *,
        accept: str = FEED_ACCEPT,
        etag: str | None = None,
        last_modified: str | None = None,
        timeout_s: float | None = None,
        max_body_bytes: int | None = None,
        access: Access | None = None,
    ) -> Response:
        timeout = timeout_s if timeout_s else self.settings.timeout_s
        limit = max_body_bytes or self.settings.max_body_bytes
        started = time.monotonic()
        budget = Budget(started + 2 * timeout, self.stopping)
        access = access or Access()
        try:
            request = self.client.build_request(
                "GET",
                url,
                headers=_request_headers(accept, etag, last_modified),
                timeout=httpx.Timeout(timeout, pool=2 * timeout),
                extensions={ALLOW_PRIVATE: access.allow_private},  # kept by every redirect
            )
            with within(budget):
                return self._follow(request, url, _Limits(limit, started, timeout), access)
        except _HTTPX_ERRORS as exc:
            raise self._translated(exc, url, timeout, budget) from exc

    def _follow(
        self, request: httpx.Request, url: str, limits: _Limits, access: Access
    ) -> Response:
        """Send ``request`` and the redirects it leads to; read the final answer. The
        Source's credentials go only to its own origin, never to where it redirects."""
        origin = request.url.copy_with(path="/", query=None, fragment=None)
        for _ in range(self.settings.max_redirects + 1):
            same = request.url.copy_with(path="/", query=None, fragment=None) == origin
            response = self.client.send(request, stream=True, auth=access.auth if same else None)
            try:
                if response.next_request is None:
                    return _read_response(response, url, limits)
            finally:
                response.close()  # a redirect's body is never read (nor decoded)
            request = response.next_request
        raise FetchRejected(
            f"{url}: more than {self.settings.max_redirects} redirects (a redirect loop?)"
        )

    def _translated(
        self, exc: Exception, url: str, timeout: float, budget: Budget
    ) -> FetchUnavailable | FetchRejected:
        """The platform's error for one of httpx's: network trouble is temporary."""
        if isinstance(exc, httpx.TimeoutException):
            if time.monotonic() >= budget.deadline - 0.01:
                return _past_deadline(url, timeout)
            return FetchTimedOut(f"{url}: timed out after {timeout:g}s ({_kind(exc)})")
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return FetchRejected(f"{url}: cannot fetch: {exc}")
        if isinstance(exc, httpx.DecodingError):
            return FetchRejected(f"{url}: undecodable response body: {exc}")
        return FetchUnavailable(f"{url}: {_kind(exc)}: {exc or 'connection failed'}")


# What ``Fetcher._translated`` knows; TimeoutException and UnsupportedProtocol are
# TransportErrors.
_HTTPX_ERRORS = (httpx.TransportError, httpx.InvalidURL, httpx.DecodingError)


@dataclass(frozen=True)
class _Limits:
    body_bytes: int
    started: float  # time.monotonic() when the fetch began
    timeout: float

    @property
    def deadline(self) -> float:
        return self.started + 2 * self.timeout


def _past_deadline(url: str, timeout: float) -> FetchTimedOut:
    return FetchTimedOut(
        f"{url}: response still incomplete after {2 * timeout:g}s, the deadline of a fetch "
        f"(connect, headers and body: twice its {timeout:g}s timeout)",
        deadline=True,
    )


def _request_headers(accept: str, etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Accept, plus the validators that make the GET conditional."""
    headers = {"Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _read_response(response: httpx.Response, url: str, limits: _Limits) -> Response:
    """Check the status and size of a streamed answer and read its body."""
    found = {k.lower(): v for k, v in response.headers.items()}
    final = str(response.url)
    status = response.status_code
    if status == 304:
        return Response(304, final, b"", found, time.monotonic() - limits.started)
    _check_status(status, found, url)
    _check_declared_size(found.get("content-length", ""), url, limits.body_bytes, status)
    decoder = decoder_for(found.get("content-encoding", ""), url, status)
    body = _read_body(response, decoder, url, limits)
    return Response(status, final, body, found, time.monotonic() - limits.started)


def _check_declared_size(declared: str, url: str, limit: int, status: int) -> None:
    """Refuse before reading when Content-Length already exceeds the limit."""
    if declared.isdigit() and int(declared) > limit:
        raise FetchRejected(
            f"{url}: body of {int(declared)} bytes exceeds the limit of {limit}", status
        )


def _read_body(response: httpx.Response, decoder: Decoder, url: str, limits: _Limits) -> bytes:
    """The decoded body, read raw and decoded a capped step at a time; refused past
    ``limits.body_bytes`` decoded bytes or the deadline (the sockets keep it too,
    this covers a transport given by a test)."""
    chunks: list[bytes] = []
    size = 0
    for raw in response.iter_raw():
        for piece in decoder.feed(raw):
            size += len(piece)
            if size > limits.body_bytes:
                raise FetchRejected(
                    f"{url}: {'decoded ' if decoder.encoding else ''}body exceeds the limit "
                    f"of {limits.body_bytes} bytes",
                    response.status_code,
                )
            chunks.append(piece)
        if time.monotonic() > limits.deadline:
            raise _past_deadline(url, limits.timeout)
    chunks.append(decoder.finish())
    return b"".join(chunks)


def _kind(exc: Exception) -> str:
    return type(exc).__name__


def _check_status(status: int, headers: Mapping[str, str], url: str) -> None:
    if 200 <= status < 300:
        return
    if status in TEMPORARY_STATUSES or status >= 500:
        wait = retry_after(headers.get("retry-after"), time.time())
        extra = f", retry after {wait:g}s" if wait is not None else ""
        raise FetchUnavailable(f"{url}: HTTP {status}{extra}", status, wait)
    raise FetchRejected(f"{url}: HTTP {status}", status)
