"""Which addresses a fetch may connect to: pure classification, shared by the
reconciler (``atlas validate`` refuses a Source whose URL is an address the policy
refuses) and atlas-core (``atlas.core.netpolicy`` checks every resolved address).

Global (public) addresses are allowed; loopback, private (RFC 1918, fc00::/7,
100.64/10), link-local, cloud metadata (169.254.169.254, fd00:ec2::254,
100.100.100.200), unspecified, multicast, broadcast and reserved ones are not.
IPv6 forms that carry an IPv4 address (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
6to4, Teredo) are judged by that address. ``AddressPolicy.allowed`` (an
Environment's ``spec.sources.allowPrivateNetworks``) opens those networks — the one
way to a metadata address; ``allow_private`` (a Source's ``spec.fetch.allowPrivate``)
opens loopback, private and link-local. Unspecified and multicast never open.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
NEVER = frozenset({"unspecified", "multicast"})  # refused whatever is allowed
PRIVATE_KINDS = frozenset({"loopback", "private", "link-local"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


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


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names when it is one, in any spelling the resolver
    accepts (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``127.1``,
    ``[::ffff:169.254.169.254]``); None for a host name."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(c.isalnum() or c == "." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
