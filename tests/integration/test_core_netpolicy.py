"""The address policy against real servers on 127.0.0.x: refused by default, opened
by the allowances, checked again on every redirect hop, by the address connected to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from atlas.core.fetch import Fetcher
from atlas.core.netpolicy import Access
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
