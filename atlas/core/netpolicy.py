"""Which addresses atlas-core may fetch from: the guard against SSRF.

By default a fetch may connect only to global (public) addresses: loopback,
private (RFC 1918, fc00::/7, 100.64/10), link-local, cloud metadata
(169.254.169.254, fd00:ec2::254, 100.100.100.200), unspecified (0.0.0.0, ::),
multicast, broadcast and reserved addresses are refused. Addresses are classified
after resolving (``getaddrinfo``, which also turns ``2852039166``, ``0251.0376.…``
and ``0xa9fea9fe`` into dotted form) and after unwrapping IPv6 forms that carry an
IPv4 address (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo).

The check sits where the connection is made (an httpcore network backend), so it
covers the first request and every redirect hop alike, and it connects to exactly
the address it checked (the URL's host name still goes into the Host header and
TLS SNI), so a DNS answer that changes between check and connect cannot slip by.

Allowances: ``AddressPolicy.allowed`` (an Environment's
``spec.sources.allowPrivateNetworks``) lets every source reach those networks — the
one way to reach a metadata address; ``allow_private`` (a Source's
``spec.fetch.allowPrivate``) lets one source reach loopback, private and
link-local addresses. Unspecified and multicast addresses are never fetched.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from atlas.errors import ConfigError, FetchRejected

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The request extension that carries a source's allowPrivate to the transport.
ALLOW_PRIVATE = "atlas.allow_private"

METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
NEVER = frozenset({"unspecified", "multicast"})  # refused whatever is allowed
PRIVATE_KINDS = frozenset({"loopback", "private", "link-local"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


@dataclass(frozen=True)
class Access:
    """How one source's fetch may connect: its allowance and its basic auth."""

    allow_private: bool = False
    auth: tuple[str, str] | None = field(default=None, repr=False)


def unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv6 address that carries one; else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (metadata, loopback, private, link-local,
    unspecified, multicast, reserved), or None when it is one."""
    ip = unwrap(ip)
    if ip in METADATA:
        return "metadata"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("reserved", ip == _BROADCAST or ip.is_reserved),
        ("private", ip.is_private or ip in _SHARED),
    )
    for kind, hit in checks:
        if hit:
            return kind
    return None if ip.is_global else "reserved"


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


@dataclass(frozen=True)
class AddressPolicy:
    allowed: tuple[IPNetwork, ...] = ()
    allow_private: bool = False

    def refusal(self, ip: IPAddress) -> str | None:
        """None when a fetch may connect to ``ip``; else why not (one clause)."""
        kind = classify(ip)
        if kind is None:
            return None
        plain = unwrap(ip)
        if kind in NEVER:
            return f"{kind} addresses are never fetched"
        if any(plain.version == n.version and plain in n for n in self.allowed):
            return None
        if self.allow_private and kind in PRIVATE_KINDS:
            return None
        how = (
            "list it in the Environment's spec.sources.allowPrivateNetworks"
            if kind not in PRIVATE_KINDS
            else "set spec.fetch.allowPrivate on the Source or list the network in the "
            "Environment's spec.sources.allowPrivateNetworks"
        )
        return f"{kind} addresses are refused by default ({how})"

    def allowing_private(self) -> AddressPolicy:
        return AddressPolicy(self.allowed, allow_private=True)


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

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
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


def _guarded(policy: AddressPolicy, limits: httpx.Limits) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(limits=limits, trust_env=False)
    pool = transport._pool  # httpx has no public way to set the backend
    assert isinstance(pool, httpcore.ConnectionPool), "httpx changed: no connection pool"
    pool._network_backend = PolicyBackend(policy)
    return transport


class PolicyTransport(httpx.BaseTransport):
    """Two pools, so a connection opened for a source with ``allowPrivate`` is never
    reused by one without: the request extension ``ALLOW_PRIVATE`` picks the pool."""

    def __init__(self, policy: AddressPolicy, limits: httpx.Limits) -> None:
        self.strict = _guarded(policy, limits)
        self.private = _guarded(policy.allowing_private(), limits)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pool = self.private if request.extensions.get(ALLOW_PRIVATE) else self.strict
        return pool.handle_request(request)

    def close(self) -> None:
        self.strict.close()
        self.private.close()
