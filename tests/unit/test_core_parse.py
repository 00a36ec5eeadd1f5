"""Parsing feeds, pages and bundled text into items; identity for dedupe."""

from __future__ import annotations

import pytest

from atlas.core import html_text
from atlas.core.caching import freshness, retry_after
from atlas.core.model import Item, Response
from atlas.core.parse import parse_feed, parse_page, text_item
from atlas.core.settings import SourceSettings
from atlas.errors import ContentError
from tests.support.feeds import Entry, atom, entries, rss091, rss10, rss20

FORMATS = {"rss20": rss20, "rss10": rss10, "atom": atom}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_feed_formats_parse_to_items(fmt: str) -> None:
    doc = FORMATS[fmt](entries("f", 3))
    items = parse_feed(doc, "application/xml", "http://example.invalid/feed")
    assert [i.title for i in items] == ["f item 0", "f item 1", "f item 2"]
    first = items[0]
    assert first.url == "http://example.invalid/f/0"
    assert first.text == "Body of f number 0 about lighthouses."
    assert first.published_at == 1_700_000_000.0


def test_rss_091_parses() -> None:
    items = parse_feed(rss091([Entry("old one", link="http://x.invalid/1", text="t")]))
    assert [(i.title, i.url) for i in items] == [("old one", "http://x.invalid/1")]


def test_identity_is_guid_else_url_else_content_hash() -> None:
    with_guid = parse_feed(rss20([Entry("a", link="http://x.invalid/a", guid="g-1")]))[0]
    assert with_guid.dedupe_key == "guid:g-1"
    no_guid = parse_feed(rss20([Entry("b", link="http://x.invalid/b")]))[0]
    assert no_guid.dedupe_key == "url:http://x.invalid/b"
    bare = parse_feed(rss20([Entry("c", text="only text")]))[0]
    assert bare.dedupe_key.startswith("hash:")
    assert bare.dedupe_key == parse_feed(rss20([Entry("c", text="only text")]))[0].dedupe_key
    assert bare.dedupe_key != parse_feed(rss20([Entry("c", text="changed")]))[0].dedupe_key


def test_changed_content_keeps_identity_but_changes_hash() -> None:
    one = Item("t", "x", guid="g")
    two = Item("t", "y", guid="g")
    assert one.dedupe_key == two.dedupe_key
    assert one.content_hash != two.content_hash


def test_garbage_is_not_a_feed() -> None:
    with pytest.raises(ContentError, match="not an RSS or Atom feed"):
        parse_feed(b"<<< this is not xml &&&", "application/xml", "http://x.invalid/bad")


def test_non_feed_html_page_is_not_a_feed() -> None:
    page = b"<html><head><title>Hi</title></head><body><p>hello</p></body></html>"
    with pytest.raises(ContentError, match="not an RSS or Atom feed"):
        parse_feed(page, "text/html", "http://x.invalid/page")


def test_truncated_feed_keeps_complete_entries_and_drops_empty_ones() -> None:
    doc = rss20([Entry("complete", link="http://x.invalid/1", guid="1")])
    cut = doc.replace(b"</channel></rss>", b"<item><description>cut")
    items = parse_feed(cut, "application/xml", "http://x.invalid/cut")
    assert [i.title for i in items] == ["complete"]


def test_empty_feed_has_no_items() -> None:
    assert parse_feed(rss20([])) == ()


def test_page_title_and_readable_text() -> None:
    html = (
        "<html><head><title> The  Title </title><style>p{}</style></head><body>"
        "<header>Site header</header><nav><a>Home</a></nav>"
        "<main><h1>Heading</h1><p>First &amp; <b>bold</b> para.</p><script>evil()</script>"
        "<ul><li>one</li><li>two</li></ul></main><footer>(c)</footer></body></html>"
    )
    resp = Response(200, "http://x.invalid/p", html.encode(), {"content-type": "text/html"}, 0.1)
    item = parse_page(resp, "http://x.invalid/p")
    assert item.title == "The Title"
    assert item.text == "Heading\n\nFirst & bold para.\n\none\n\ntwo"
    assert item.guid == "http://x.invalid/p"


def test_page_without_main_keeps_body_text_and_charset() -> None:
    body = "<p>café</p>".encode("latin-1")
    resp = Response(200, "u", body, {"content-type": "text/html; charset=iso-8859-1"}, 0)
    assert parse_page(resp, "u").text == "café"


def test_binary_page_is_rejected() -> None:
    resp = Response(200, "u", b"%PDF", {"content-type": "application/pdf"}, 0)
    with pytest.raises(ContentError, match="not a web page"):
        parse_page(resp, "u")


def test_text_source_is_one_item_identified_by_the_source() -> None:
    src = SourceSettings("motd", "text", "Message", True, 60, None, "hello", None, None, None)
    item = text_item(src)
    assert (item.title, item.text, item.dedupe_key) == ("Message", "hello", "guid:text:motd")


def test_html_fragment_to_text() -> None:
    assert html_text.to_text("a &lt; b") == "a < b"
    assert html_text.to_text("<p>x</p><p>y</p>") == "x\n\ny"


def test_retry_after_and_freshness_headers() -> None:
    now = 1_700_000_000.0
    assert retry_after("120", now) == 120.0
    assert retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now) == pytest.approx(60.0)
    assert retry_after("soon", now) is None
    assert freshness({"cache-control": "public, max-age=3600"}, now) == 3600.0
    assert freshness({"cache-control": "no-cache, max-age=3600"}, now) == 0.0
    assert (
        freshness(
            {"expires": "Tue, 14 Nov 2023 23:13:20 GMT", "date": "Tue, 14 Nov 2023 22:13:20 GMT"},
            now,
        )
        == 3600.0
    )
    assert freshness({"expires": "garbage"}, now) == 0.0
    assert freshness({}, now) is None


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (
            b"\xef\xbb\xbf<title>Caf\xc3\xa9</title><p>cr\xc3\xa8me</p>",
            "text/html; charset=iso-8859-1",
        ),
        ("\ufeff<title>Café</title><p>crème</p>".encode("utf-16-le"), "text/html"),
        ("\ufeff<title>Café</title><p>crème</p>".encode("utf-16-be"), "text/html; charset=utf-8"),
        (b"<meta charset=bogus-name><title>Caf\xc3\xa9</title><p>cr\xc3\xa8me</p>", "text/html"),
    ],
)
def test_page_byte_order_mark_wins_and_bad_charsets_fall_back(body: bytes, header: str) -> None:
    resp = Response(200, "u", body, {"content-type": header}, 0)
    item = parse_page(resp, "u")
    assert (item.title, item.text) == ("Café", "crème")
