"""The HTTP probe seam: the status a health check URL answers, within a timeout.

``HttpProbe`` is the protocol; ``HttpxProbe`` asks with httpx (no proxies from the
environment, no redirects followed). Nothing answering is an ``OSError``. An https
URL on a loopback address is this host's own service with the certificate it was
given (often self-signed for its public name): it is probed without verifying the
certificate, which proves nothing on loopback that the answer does not. Any other
https URL is verified.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Protocol


def own_host(url: str) -> bool:
    """Whether ``url`` is https on a loopback address (or localhost)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or parts.hostname is None:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class HttpProbe(Protocol):
    def status(self, url: str, timeout: float) -> int:
        """The HTTP status of GET ``url``; raises OSError when nothing answers."""
        ...


class HttpxProbe:
    def __init__(self) -> None:
        import httpx  # only the commands that probe pay for loading it

        self._httpx = httpx
        self._client = httpx.Client(follow_redirects=False, trust_env=False)
        self._loopback = httpx.Client(follow_redirects=False, trust_env=False, verify=False)  # noqa: S501 (loopback only, see above)

    def status(self, url: str, timeout: float) -> int:
        client = self._loopback if own_host(url) else self._client
        try:
            return client.get(url, timeout=timeout).status_code
        except self._httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
