"""HTTP fetching with httpx: the one module that talks to the network.

Timeouts for connecting and reading (plus a whole-response deadline of twice the
timeout, so a trickling server cannot hold a worker), a maximum body size checked
against Content-Length and again while streaming (after decompression), a limit
on redirects, a descriptive User-Agent, and conditional GET from the stored
ETag/Last-Modified. httpx's errors and unusable statuses become the platform's:
``FetchUnavailable`` (temporary: network, timeouts, 5xx, 408, 429 — with the
server's Retry-After) or ``FetchRejected`` (permanent: other 4xx, too large, too
many redirects, unsupported URL).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx

from atlas.core.caching import retry_after
from atlas.core.model import Response
from atlas.core.netpolicy import ALLOW_PRIVATE, Access, AddressPolicy, PolicyTransport
from atlas.core.settings import FetchSettings
from atlas.errors import FetchRejected, FetchUnavailable

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5, */*;q=0.1"
TEMPORARY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class Fetcher:
    """A pooled HTTP client; safe to share between worker threads."""

    def __init__(
        self,
        settings: FetchSettings,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        limits = httpx.Limits(
            max_connections=max(10, settings.concurrency * 2),
            max_keepalive_connections=max(10, settings.concurrency * 2),
        )
        policy = AddressPolicy(settings.allowed_networks)
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent},
            follow_redirects=True,
            max_redirects=settings.max_redirects,
            timeout=settings.timeout_s,
            limits=limits,
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
        headers = _request_headers(accept, etag, last_modified)
        started = time.monotonic()
        access = access or Access()
        try:
            with self.client.stream(
                "GET",
                url,
                headers=headers,
                timeout=httpx.Timeout(timeout),
                auth=access.auth,
                extensions={ALLOW_PRIVATE: access.allow_private},
            ) as response:
                return _read_response(response, url, limit, started, timeout)
        except _HTTPX_ERRORS as exc:
            raise self._translated(exc, url, timeout) from exc

    def _translated(
        self, exc: Exception, url: str, timeout: float
    ) -> FetchUnavailable | FetchRejected:
        """The platform's error for one of httpx's: network trouble is temporary."""
        if isinstance(exc, httpx.TimeoutException):
            return FetchUnavailable(f"{url}: timed out after {timeout:g}s ({_kind(exc)})")
        if isinstance(exc, httpx.TooManyRedirects):
            return FetchRejected(
                f"{url}: more than {self.settings.max_redirects} redirects (a redirect loop?)"
            )
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return FetchRejected(f"{url}: cannot fetch: {exc}")
        if isinstance(exc, httpx.DecodingError):
            return FetchRejected(f"{url}: undecodable response body: {exc}")
        return FetchUnavailable(f"{url}: {_kind(exc)}: {exc or 'connection failed'}")


# What ``Fetcher._translated`` knows; TimeoutException and UnsupportedProtocol are
# TransportErrors.
_HTTPX_ERRORS = (
    httpx.TransportError,
    httpx.TooManyRedirects,
    httpx.InvalidURL,
    httpx.DecodingError,
)


def _request_headers(accept: str, etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Accept, plus the validators that make the GET conditional."""
    headers = {"Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _read_response(
    response: httpx.Response, url: str, limit: int, started: float, timeout: float
) -> Response:
    """Check the status and size of a streamed answer and read its body."""
    found = {k.lower(): v for k, v in response.headers.items()}
    final = str(response.url)
    status = response.status_code
    if status == 304:
        return Response(304, final, b"", found, time.monotonic() - started)
    _check_status(status, found, url)
    _check_declared_size(found.get("content-length", ""), url, limit, status)
    body = _read_body(response, url, limit, started + 2 * timeout, timeout)
    return Response(status, final, body, found, time.monotonic() - started)


def _check_declared_size(declared: str, url: str, limit: int, status: int) -> None:
    """Refuse before reading when Content-Length already exceeds the limit."""
    if declared.isdigit() and int(declared) > limit:
        raise FetchRejected(
            f"{url}: body of {int(declared)} bytes exceeds the limit of {limit}", status
        )


def _read_body(
    response: httpx.Response, url: str, limit: int, deadline: float, timeout: float
) -> bytes:
    """The decompressed body; refused past ``limit`` bytes or the monotonic ``deadline``
    (which is twice the ``timeout`` after the request started)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchRejected(
                f"{url}: body exceeds the limit of {limit} bytes", response.status_code
            )
        if time.monotonic() > deadline:
            raise FetchUnavailable(f"{url}: response still incomplete after {2 * timeout:g}s")
        chunks.append(chunk)
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
