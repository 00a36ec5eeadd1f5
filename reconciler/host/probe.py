"""The HTTP probe seam: the status a health check URL answers, within a timeout.

``HttpProbe`` is the protocol; ``HttpxProbe`` asks with httpx (no proxies from the
environment, no redirects followed). Nothing answering is an ``OSError``.
"""

from __future__ import annotations

from typing import Protocol


class HttpProbe(Protocol):
    def status(self, url: str, timeout: float) -> int:
        """The HTTP status of GET ``url``; raises OSError when nothing answers."""
        ...


class HttpxProbe:
    def __init__(self) -> None:
        import httpx  # only the commands that probe pay for loading it

        self._httpx = httpx
        self._client = httpx.Client(follow_redirects=False, trust_env=False)

    def status(self, url: str, timeout: float) -> int:
        try:
            return self._client.get(url, timeout=timeout).status_code
        except self._httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
