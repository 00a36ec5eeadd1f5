"""The address policy against real servers on 127.0.0.x: refused by default, opened
by the allowances, checked again on every redirect hop, by the address connected to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from atlas.core.fetch import Fetcher
from atlas.core.netpolicy import Access, AddressPolicy, PolicyTransport
from atlas.core.settings import FetchSettings
from atlas.errors import FetchRejected
from tests.support.feeds import FeedServer, Reply


def settings(*allowed: str) -> FetchSettings:
    return FetchSettings(
        user_agent="AtlasTest/1.0",
        timeout_s=2.0,
        max_body_bytes=100_000,
        max_redirects=3,
        concurrency=2,
        allowed_networks=tuple(ipaddress.ip_network(n) for n in allowed),
    )


@pytest.fixture
def admin() -> Iterator[FeedServer]:
    """An internal admin page on loopback (the issue: it was stored and served)."""
    with FeedServer("127.0.0.1") as srv:
        srv.routes["/admin"] = Reply(body=b"internal admin page")
        yield srv


def fetch(s: FetchSettings, url: str, access: Access | None = None) -> bytes:
    f = Fetcher(s)
    try:
        return f.get(url, access=access).body
    finally:
        f.close()


@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "0177.0.0.1", "[::ffff:127.0.0.1]"],
)
def test_loopback_in_any_spelling_is_refused_by_default(admin: FeedServer, spelling: str) -> None:
    # (httpx itself refuses the octal spelling as an invalid address)
    why = r"loopback addresses are refused by default|Invalid IPv4 address"
    with pytest.raises(FetchRejected, match=why):
        fetch(settings(), f"http://{spelling}:{admin.port}/admin")
    assert admin.seen == []  # nothing reached the server


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://0.0.0.0:9/",
        "http://[::]:9/",
        "http://224.0.0.1:9/",
    ],
)
def test_metadata_unspecified_and_multicast_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(FetchRejected, match=r"refused to connect"):
        fetch(settings(), url, Access(allow_private=True))


def test_the_allowances_open_loopback(admin: FeedServer) -> None:
    assert fetch(settings("127.0.0.0/8"), admin.url("/admin")) == b"internal admin page"
    assert fetch(settings(), admin.url("/admin"), Access(True)) == b"internal admin page"


def test_a_redirect_to_loopback_is_refused_at_the_hop() -> None:
    with FeedServer("127.0.0.2") as outside, FeedServer("127.0.0.1") as inside:
        inside.routes["/admin"] = Reply(body=b"internal admin page")
        outside.routes["/feed"] = Reply(302, headers={"Location": inside.url("/admin")})
        s = settings("127.0.0.2/32")  # only the "outside" server is allowed
        with pytest.raises(FetchRejected, match=r"127\.0\.0\.1:\d+: loopback addresses"):
            fetch(s, outside.url("/feed"))
        assert len(outside.requests_to("/feed")) == 1
        assert inside.seen == []


def test_a_source_without_allowance_never_reuses_an_allowed_connection(
    admin: FeedServer,
) -> None:
    f = Fetcher(settings())
    try:
        assert f.get(admin.url("/admin"), access=Access(True)).body == b"internal admin page"
        with pytest.raises(FetchRejected):
            f.get(admin.url("/admin"))
    finally:
        f.close()
    assert len(admin.seen) == 1


def test_basic_auth_is_sent_and_not_to_another_origin() -> None:
    with FeedServer("127.0.0.2") as first, FeedServer("127.0.0.1") as second:
        second.routes["/feed"] = Reply(body=b"ok")
        first.routes["/feed"] = Reply(302, headers={"Location": second.url("/feed")})
        s = settings("127.0.0.0/8")
        assert fetch(s, first.url("/feed"), Access(auth=("u", "p"))) == b"ok"
        assert first.requests_to("/feed")[0].headers["authorization"] == "Basic dTpw"
        assert "authorization" not in second.requests_to("/feed")[0].headers


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    """A rebinding name: whatever it resolves to next, the connection goes to the
    address that passed the check, with the name kept in the Host header."""
    with FeedServer("127.0.0.2") as outside, FeedServer("127.0.0.1") as inside:
        outside.routes["/feed"] = Reply(body=b"outside")
        inside.routes["/feed"] = Reply(body=b"internal")
        answers = [[ipaddress.ip_address("127.0.0.2")], [ipaddress.ip_address("127.0.0.1")]]
        asked: list[str] = []

        def rebinding(host: str, port: int) -> list[Any]:
            asked.append(host)
            return answers[min(len(asked), 2) - 1]

        s = settings("127.0.0.2/32")
        limits = httpx.Limits(max_connections=4)
        transport = PolicyTransport(AddressPolicy(s.allowed_networks), limits, rebinding)
        f = Fetcher(s, transport)
        try:
            url = f"http://feed.test:{outside.port}/feed"
            assert f.get(url).body == b"outside"
            assert outside.requests_to("/feed")[0].headers["host"] == f"feed.test:{outside.port}"
            f.client.close()  # a new connection resolves again: now to the inside
            f = Fetcher(s, PolicyTransport(AddressPolicy(s.allowed_networks), limits, rebinding))
            with pytest.raises(FetchRejected, match=r"feed\.test \(127\.0\.0\.1\)"):
                f.get(url)
        finally:
            f.close()
        assert asked == ["feed.test", "feed.test"]  # once per connection
        assert inside.seen == []
