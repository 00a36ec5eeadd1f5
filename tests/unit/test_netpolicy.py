"""The address policy of atlas-core's fetches, as a table: what each address is and
whether a fetch may connect to it, with and without the allowances."""

from __future__ import annotations

import ipaddress

import pytest

from atlas.core.netpolicy import AddressPolicy, classify, literal_address, parse_networks, resolve
from atlas.errors import ConfigError

CASES = [
    ("93.184.215.14", None),
    ("2606:4700::6810:84e5", None),
    ("169.254.169.254", "metadata"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ("2002:a9fe:a9fe::", "metadata"),  # 6to4 of 169.254.169.254
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),
    ("fc00::1", "private"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
]


@pytest.mark.parametrize(("address", "kind"), CASES)
def test_classify(address: str, kind: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(("address", "kind"), [c for c in CASES if c[1] is not None])
def test_default_policy_refuses_every_non_public_address(address: str, kind: str) -> None:
    why = AddressPolicy().refusal(ipaddress.ip_address(address))
    assert why is not None and why.startswith(kind)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2852039166", "169.254.169.254"),  # decimal
        ("0251.0376.0251.0376", "169.254.169.254"),  # octal
        ("0xa9fea9fe", "169.254.169.254"),  # hex
        ("0x7f.1", "127.0.0.1"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe"),
    ],
)
def test_resolving_normalises_every_spelling(written: str, expected: str) -> None:
    [ip] = resolve(written, 80)
    assert ip == ipaddress.ip_address(expected)
    assert classify(ip) in ("metadata", "loopback")


def test_allow_private_opens_loopback_private_link_local_but_not_metadata() -> None:
    policy = AddressPolicy(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.1", "::1", "fe80::1", "::ffff:192.168.0.1"):
        assert policy.refusal(ipaddress.ip_address(address)) is None, address
    for address in ("169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0", "224.0.0.1"):
        assert policy.refusal(ipaddress.ip_address(address)) is not None, address


def test_allowed_networks_open_exactly_themselves() -> None:
    policy = AddressPolicy(parse_networks(["127.0.0.0/8", "169.254.169.254/32"], "w"))
    assert policy.refusal(ipaddress.ip_address("127.0.0.9")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.9")) is None
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) is None
    assert policy.refusal(ipaddress.ip_address("10.0.0.1")) is not None
    assert policy.refusal(ipaddress.ip_address("::1")) is not None


def test_unspecified_and_multicast_stay_refused_even_when_listed() -> None:
    policy = AddressPolicy(parse_networks(["0.0.0.0/0", "::/0"], "w"), allow_private=True)
    for address in ("0.0.0.0", "::", "239.1.1.1"):
        assert "never" in (policy.refusal(ipaddress.ip_address(address)) or ""), address


def test_a_bad_network_names_where_and_what_was_expected() -> None:
    with pytest.raises(ConfigError, match=r"core.json: fetch.allowPrivateNetworks\[1\]: expected"):
        parse_networks(["10.0.0.0/8", "ten"], "core.json: fetch.allowPrivateNetworks")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("127.1", "127.0.0.1"),
        ("[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe"),
        ("::1", "::1"),
        ("example.com", None),
        ("feeds-1.example", None),
        ("", None),
    ],
)
def test_literal_address_reads_every_spelling(host: str, expected: str | None) -> None:
    found = literal_address(host)
    assert found == (ipaddress.ip_address(expected) if expected else None)
