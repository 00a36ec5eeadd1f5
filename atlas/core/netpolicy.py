"""Where atlas-core's fetches connect: the guard against SSRF.

What is allowed is ``seams.addresses`` (pure: which addresses, which allowances);
this module applies it where the connection is made, in an httpcore network
backend: the host is resolved once (``getaddrinfo``, which also turns
``2852039166``, ``0251.0376.…`` and ``0xa9fea9fe`` into dotted form), every address
is checked, and the connection goes to exactly the address that was checked (the
URL's host name still goes into the Host header and TLS SNI). So the first request
and every redirect hop are held to the policy alike, and a DNS answer that changes
between check and connect cannot slip by.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from atlas.core.deadline import DeadlineBackend
from atlas.errors import ConfigError, FetchRejected
from seams.addresses import (
    METADATA,
    AddressPolicy,
    IPAddress,
    IPNetwork,
    classify,
    literal_address,
    unwrap,
)

__all__ = [
    "ALLOW_PRIVATE", "METADATA", "Access", "AddressPolicy", "IPAddress", "IPNetwork",
    "PolicyBackend", "PolicyTransport", "classify", "literal_address", "parse_networks",
    "resolve", "unwrap",
]  # fmt: skip
Resolver = Callable[[str, int], list[IPAddress]]

# The request extension that carries a source's allowPrivate to the transport.
ALLOW_PRIVATE = "atlas.allow_private"


@dataclass(frozen=True)
class Access:
    """How one source's fetch may connect: its allowance and its basic auth."""

    allow_private: bool = False
    auth: tuple[str, str] | None = field(default=None, repr=False)


def parse_networks(values: Iterable[str], where: str) -> tuple[IPNetwork, ...]:
    """CIDRs (``10.0.0.0/8``, ``::1/128``, or one address) as networks; ConfigError if not."""
    out = []
    for i, value in enumerate(values):
        try:
            out.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"{where}[{i}]: expected a network in CIDR form such as 10.0.0.0/8, got "
                f"{value!r} ({exc})"
            ) from None
    return tuple(out)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in resolver order, normalised by ``ipaddress``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


class PolicyBackend(httpcore.NetworkBackend):
    """Resolves once, checks every address, connects to a permitted one by address."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or resolve
        self.inner = DeadlineBackend()  # each socket operation within the fetch's budget

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        permitted = [ip for ip in addresses if self.policy.refusal(ip) is None]
        if not permitted:
            ip = addresses[0]
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise FetchRejected(f"refused to connect to {shown}:{port}: {self.policy.refusal(ip)}")
        error: httpcore.ConnectError | None = None
        for ip in permitted:
            try:
                return self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise FetchRejected(f"refused to connect to the unix socket {path}")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _guarded(
    policy: AddressPolicy, limits: httpx.Limits, resolver: Resolver | None
) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(limits=limits, trust_env=False)
    pool = transport._pool  # httpx has no public way to set the backend
    assert isinstance(pool, httpcore.ConnectionPool), "httpx changed: no connection pool"
    pool._network_backend = PolicyBackend(policy, resolver)
    return transport


class PolicyTransport(httpx.BaseTransport):
    """Two pools, so a connection opened for a source with ``allowPrivate`` is never
    reused by one without: the request extension ``ALLOW_PRIVATE`` picks the pool."""

    def __init__(
        self, policy: AddressPolicy, limits: httpx.Limits, resolver: Resolver | None = None
    ) -> None:
        self.strict = _guarded(policy, limits, resolver)
        self.private = _guarded(policy.allowing_private(), limits, resolver)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pool = self.private if request.extensions.get(ALLOW_PRIVATE) else self.strict
        return pool.handle_request(request)

    def close(self) -> None:
        self.strict.close()
        self.private.close()
