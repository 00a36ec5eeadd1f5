"""The fetcher against a real HTTP server on 127.0.0.1: limits, timeouts, statuses."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import pytest

from atlas.core.fetch import Fetcher
from atlas.core.settings import FetchSettings
from atlas.errors import FetchRejected, FetchUnavailable
from tests.support.feeds import FeedServer, Reply, entries, huge, rss20

SETTINGS = FetchSettings(
    user_agent="AtlasTest/1.0 (+https://atlas.invalid/bot)",
    timeout_s=0.5,
    max_body_bytes=100_000,
    max_redirects=3,
    concurrency=2,
    allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),  # the test server
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(SETTINGS)
    yield f
    f.close()


def test_ok_with_user_agent_and_headers(server: FeedServer, fetcher: Fetcher) -> None:
    body = rss20(entries("a", 2))
    server.routes["/feed"] = Reply(body=body, headers={"ETag": '"v1"', "Content-Type": "text/xml"})
    resp = fetcher.get(server.url("/feed"))
    assert (resp.status, resp.body, resp.headers["etag"]) == (200, body, '"v1"')
    seen = server.requests_to("/feed")[0].headers
    assert seen["user-agent"] == SETTINGS.user_agent
    assert "application/rss+xml" in seen["accept"]


def test_conditional_get_sends_validators_and_reads_304(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/feed"] = Reply(304)
    resp = fetcher.get(
        server.url("/feed"), etag='"v1"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT"
    )
    assert resp.status == 304 and resp.body == b""
    seen = server.requests_to("/feed")[0].headers
    assert seen["if-none-match"] == '"v1"'
    assert seen["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"


def test_declared_huge_body_is_refused_before_reading(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/huge"] = Reply(body=b"x" * 200_000)
    with pytest.raises(FetchRejected, match="exceeds the limit of 100000"):
        fetcher.get(server.url("/huge"))


def test_streamed_huge_body_is_cut_off_while_streaming(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/stream"] = Reply(chunks=huge(50_000_000))
    started = time.monotonic()
    with pytest.raises(FetchRejected, match="body exceeds the limit"):
        fetcher.get(server.url("/stream"))
    assert time.monotonic() - started < 5, "must stop reading, not download 50 MB"


def test_per_source_body_limit_overrides(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/mid"] = Reply(body=b"x" * 5_000)
    assert fetcher.get(server.url("/mid")).status == 200
    with pytest.raises(FetchRejected):
        fetcher.get(server.url("/mid"), max_body_bytes=1_000)


def test_slow_response_times_out(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/slow"] = Reply(body=b"late", delay_s=2.0)
    with pytest.raises(FetchUnavailable, match=r"timed out after 0\.5s"):
        fetcher.get(server.url("/slow"))


def test_trickling_body_hits_the_overall_deadline(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/trickle"] = Reply(chunks=(b"x" for _ in range(100)), chunk_delay_s=0.2)
    with pytest.raises(FetchUnavailable, match="still incomplete"):
        fetcher.get(server.url("/trickle"))


@pytest.mark.parametrize(
    ("status", "error"),
    [(s, FetchUnavailable) for s in (500, 502, 503, 504, 408)]
    + [(s, FetchRejected) for s in (400, 401, 403, 404, 410)],
)
def test_server_errors_are_temporary_client_errors_permanent(
    server: FeedServer, fetcher: Fetcher, status: int, error: type[Exception]
) -> None:
    server.routes["/err"] = Reply(status, b"oops")
    with pytest.raises(error) as info:
        fetcher.get(server.url("/err"))
    assert getattr(info.value, "status", None) == status


def test_429_and_503_carry_retry_after(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/busy"] = Reply(429, b"slow down", {"Retry-After": "42"})
    with pytest.raises(FetchUnavailable) as info:
        fetcher.get(server.url("/busy"))
    assert info.value.retry_after == 42.0
    server.routes["/maint"] = Reply(503, b"later", {"Retry-After": "7"})
    with pytest.raises(FetchUnavailable) as info:
        fetcher.get(server.url("/maint"))
    assert info.value.retry_after == 7.0


def test_redirects_are_followed_up_to_the_limit(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/old"] = Reply(301, headers={"Location": "/new"})
    server.routes["/new"] = Reply(body=b"moved here")
    resp = fetcher.get(server.url("/old"))
    assert resp.body == b"moved here" and resp.url == server.url("/new")


def test_redirect_loop_is_refused(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/a"] = Reply(302, headers={"Location": "/b"})
    server.routes["/b"] = Reply(302, headers={"Location": "/a"})
    with pytest.raises(FetchRejected, match="more than 3 redirects"):
        fetcher.get(server.url("/a"))
    assert len(server.requests_to("/a")) + len(server.requests_to("/b")) == 4


def test_connection_refused_is_temporary(fetcher: Fetcher) -> None:
    from tests.support.net import free_port

    with pytest.raises(FetchUnavailable, match="ConnectError"):
        fetcher.get(f"http://127.0.0.1:{free_port()}/feed")
