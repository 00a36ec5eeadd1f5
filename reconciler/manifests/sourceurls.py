"""What ``atlas validate`` can tell about a Source's URL before anything is fetched:
credentials in it (refused: they would be stored and shown as written) and a host
that *is* an address the environment's address policy refuses (``seams.addresses``;
host names are checked by atlas-core at every connection)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from seams.addresses import AddressPolicy, IPNetwork, literal_address

PathKey = tuple[str | int, ...]

CREDENTIALS = (
    "spec.url: expected a URL without credentials (user:password@ would be stored and "
    "shown as written): put them in the environment's Secrets and refer to them with "
    "spec.basicAuth {usernameSecret, passwordSecret}, or give the whole URL as spec.urlSecret"
)


def allowed_networks(environment_spec: Mapping[str, Any] | None) -> tuple[IPNetwork, ...]:
    """The valid entries of ``spec.sources.allowPrivateNetworks`` (ranges.py reports the rest)."""
    block = (environment_spec or {}).get("sources")
    values: Iterable[Any] = block.get("allowPrivateNetworks", []) if isinstance(block, dict) else []
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError:
            continue
    return tuple(out)


def url_problems(
    spec: Mapping[str, Any], allowed: tuple[IPNetwork, ...]
) -> list[tuple[PathKey, str]]:
    url = spec.get("url")
    if not isinstance(url, str):
        return []
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return [(("spec", "url"), CREDENTIALS)]
    try:
        host = parts.hostname
    except ValueError:
        return []
    ip = literal_address(host or "")
    if ip is None:
        return []
    fetch = spec.get("fetch")
    allow_private = isinstance(fetch, dict) and fetch.get("allowPrivate") is True
    why = AddressPolicy(allowed, allow_private).refusal(ip)
    if why is None:
        return []
    return [(("spec", "url"), f"spec.url: {host} is {ip}, refused by the address policy: {why}")]
