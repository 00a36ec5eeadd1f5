"""The fetcher against hostile servers on 127.0.0.1: compression bombs (nested and
plain, also behind a redirect) stay within the body cap in memory, not only in the
result; trickled headers end at the one deadline of the fetch; a shutdown cuts a
fetch short."""

from __future__ import annotations

import ipaddress
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest

from atlas.core.fetch import Fetcher
from atlas.core.settings import FetchSettings
from atlas.errors import FetchCancelled, FetchRejected, FetchTimedOut
from tests.support.feeds import FeedServer, Reply, entries, rss20
from tests.support.hostile import TrickleServer, gzip_bomb, gzipped

LIMIT = 100_000
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)  # the hostile servers of these tests
SETTINGS = FetchSettings(
    user_agent="AtlasTest/1.0 (+https://atlas.invalid/bot)",
    timeout_s=0.5,
    max_body_bytes=LIMIT,
    max_redirects=3,
    concurrency=2,
    allowed_networks=LOOPBACK,
)
BOMB_BYTES = 64 << 20  # decoded; the old fetcher held all of it at once
MEMORY_BOUND = 8 << 20  # what one fetch capped at 100 kB may allocate at its peak


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(SETTINGS)
    yield f
    f.close()


def peak_bytes(call: Callable[[], object]) -> tuple[int, BaseException | None]:
    """The peak Python allocation while ``call`` runs (bytes objects included), and
    what it raised."""
    tracemalloc.start()
    error: BaseException | None = None
    try:
        call()
    except Exception as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


def test_nested_gzip_bomb_is_refused_without_decoding_it(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/bomb"] = Reply(
        body=gzip_bomb(BOMB_BYTES, layers=2), headers={"Content-Encoding": "gzip, gzip"}
    )
    peak, error = peak_bytes(lambda: fetcher.get(server.url("/bomb")))
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB for a {LIMIT}-byte cap"
    assert isinstance(error, FetchRejected), error
    assert "Content-Encoding 'gzip, gzip' stacks 2 encodings" in str(error)
    assert "accepts one of gzip, deflate" in str(error)


def test_plain_gzip_bomb_is_cut_at_the_cap_in_memory_too(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.routes["/bomb"] = Reply(
        body=gzip_bomb(BOMB_BYTES, layers=1), headers={"Content-Encoding": "gzip"}
    )
    peak, error = peak_bytes(lambda: fetcher.get(server.url("/bomb")))
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB for a {LIMIT}-byte cap"
    assert isinstance(error, FetchRejected), error
    assert f"decoded body exceeds the limit of {LIMIT} bytes" in str(error)


def test_a_bomb_in_a_redirect_body_is_never_decoded(server: FeedServer, fetcher: Fetcher) -> None:
    body = rss20(entries("a", 2))
    server.routes["/old"] = Reply(
        301,
        gzip_bomb(BOMB_BYTES, layers=1),
        {"Location": "/new", "Content-Encoding": "gzip"},
    )
    server.routes["/new"] = Reply(body=body)
    peak, error = peak_bytes(lambda: fetcher.get(server.url("/old")))
    assert error is None and peak < MEMORY_BOUND, (error, peak)
    assert fetcher.get(server.url("/old")).body == body


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzipped),
        ("x-gzip", gzipped),
        ("deflate", zlib.compress),  # RFC 9110's deflate: zlib-wrapped
        ("deflate", lambda b: zlib.compress(b, wbits=-zlib.MAX_WBITS)),  # what some send
        ("identity", lambda b: b),
        ("GZIP, identity", gzipped),
    ],
)
def test_what_real_servers_send_is_decoded(
    server: FeedServer, fetcher: Fetcher, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    body = rss20(entries("a", 50))
    server.routes["/feed"] = Reply(body=encode(body), headers={"Content-Encoding": encoding})
    assert fetcher.get(server.url("/feed")).body == body
    assert server.requests_to("/feed")[0].headers["accept-encoding"] == "gzip, deflate"


def test_gzip_of_two_members_is_decoded(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Reply(
        body=gzipped(b"<rss>one ") + gzipped(b"two</rss>"), headers={"Content-Encoding": "gzip"}
    )
    assert fetcher.get(server.url("/feed")).body == b"<rss>one two</rss>"


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("br", "Content-Encoding 'br' is not one Atlas can decode"),
        ("zstd", "Content-Encoding 'zstd' is not one Atlas can decode"),
        ("gzip, deflate", "stacks 2 encodings"),
    ],
)
def test_unasked_encodings_are_refused_clearly(
    server: FeedServer, fetcher: Fetcher, encoding: str, message: str
) -> None:
    server.routes["/feed"] = Reply(body=b"\x00" * 100, headers={"Content-Encoding": encoding})
    with pytest.raises(FetchRejected, match=message) as info:
        fetcher.get(server.url("/feed"))
    assert server.url("/feed") in str(info.value)


def test_a_corrupt_gzip_body_is_refused_clearly(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/feed"] = Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchRejected, match="undecodable gzip body"):
        fetcher.get(server.url("/feed"))


def test_trickled_headers_end_at_the_deadline_of_the_fetch(fetcher: Fetcher) -> None:
    """Each header byte arrives within the 0.5 s read timeout, so only the one
    deadline (twice the timeout, from the start of the fetch) can end it."""
    with TrickleServer(every_s=0.1, for_s=8) as trickle:
        started = time.monotonic()
        with pytest.raises(
            FetchTimedOut, match=r"still incomplete after 1s, the deadline of a fetch"
        ) as info:
            fetcher.get(trickle.url())
        took = time.monotonic() - started
    assert 1.0 <= took < 1.5, took
    assert trickle.url() in str(info.value)


def test_the_deadline_covers_every_redirect(server: FeedServer, fetcher: Fetcher) -> None:
    server.routes["/a"] = Reply(302, headers={"Location": "/b"}, delay_s=0.4)
    server.routes["/b"] = Reply(302, headers={"Location": "/c"}, delay_s=0.4)
    server.routes["/c"] = Reply(body=b"late", delay_s=0.4)
    started = time.monotonic()
    with pytest.raises(FetchTimedOut, match="still incomplete after 1s"):
        fetcher.get(server.url("/a"))
    assert time.monotonic() - started < 1.5


def test_a_shutdown_cuts_a_fetch_short() -> None:
    stopping = threading.Event()
    fetcher = Fetcher(
        FetchSettings(
            user_agent="AtlasTest/1.0",
            timeout_s=30,
            max_body_bytes=LIMIT,
            max_redirects=3,
            concurrency=1,
            allowed_networks=LOOPBACK,
        ),
        stopping=stopping,
    )
    try:
        with TrickleServer(every_s=0.1, for_s=20) as trickle:
            threading.Timer(0.3, stopping.set).start()
            started = time.monotonic()
            with pytest.raises(FetchCancelled, match="shutting down"):
                fetcher.get(trickle.url())
            assert time.monotonic() - started < 1.0
    finally:
        fetcher.close()
