"""Which entries of a feed become items: every one that carries anything (RSS 2.0:
all elements of an item are optional, a title or a description is enough)."""

from __future__ import annotations

import pytest

from atlas.core.parse import parse_feed, read_feed

RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
    "<link>http://x.invalid/</link><description>d</description>{items}</channel></rss>"
)
ATOM = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>a</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>{items}</feed>"
)


def rss(*items: str) -> bytes:
    return RSS.format(items="".join(f"<item>{i}</item>" for i in items)).encode()


def atom(*entries: str) -> bytes:
    return ATOM.format(items="".join(f"<entry>{e}</entry>" for e in entries)).encode()


@pytest.mark.parametrize(
    ("doc", "title", "text", "key"),
    [
        (
            rss("<description>Only a &lt;b&gt;description&lt;/b&gt;</description>"),
            "",
            "Only a description",
            "hash:",
        ),
        (rss("<guid>urn:only-guid</guid>"), "", "", "guid:urn:only-guid"),
        (rss("<link>http://x.invalid/only-link</link>"), "", "", "url:http://x.invalid/only-link"),
        (
            atom('<content type="html">&lt;p&gt;only content&lt;/p&gt;</content>'),
            "",
            "only content",
            "hash:",
        ),
        (atom("<summary>only summary</summary>"), "", "only summary", "hash:"),
        (atom("<id>urn:only-id</id>"), "", "", "guid:urn:only-id"),
        (
            atom('<link href="http://x.invalid/l"/><summary>s</summary>'),
            "",
            "s",
            "url:http://x.invalid/l",
        ),
    ],
)
def test_entry_without_title_is_kept(doc: bytes, title: str, text: str, key: str) -> None:
    (item,) = parse_feed(doc, "application/xml", "http://x.invalid/feed")
    assert (item.title, item.text) == (title, text)
    assert item.dedupe_key.startswith(key)


def test_description_only_entries_are_told_apart_by_content() -> None:
    feed = read_feed(rss("<description>one</description>", "<description>two</description>"))
    assert [i.text for i in feed.items] == ["one", "two"]
    assert len({i.dedupe_key for i in feed.items}) == 2
    assert feed.skipped == 0


def test_empty_entries_are_skipped_and_counted() -> None:
    doc = rss(
        "<title> </title><description>  </description>",
        "<author>a@x.invalid</author>",
        "<title>kept</title>",
    )
    feed = read_feed(doc, "application/xml", "http://x.invalid/feed")
    assert [i.title for i in feed.items] == ["kept"]
    assert feed.skipped == 2


def test_entry_cut_off_by_a_truncated_feed_is_skipped_not_stored_partly() -> None:
    # its text is partial: stored under a content hash, the complete entry would
    # later be stored beside it as a second item
    cut = rss("<title>complete</title><guid>1</guid>").replace(
        b"</channel></rss>", b"<item><description>cut he"
    )
    feed = read_feed(cut, "application/xml", "http://x.invalid/cut")
    assert [i.title for i in feed.items] == ["complete"]
    assert feed.skipped == 1


def test_cut_off_entry_with_an_identity_is_kept() -> None:
    cut = rss("<title>complete</title>").replace(
        b"</channel></rss>", b"<item><guid>g2</guid><title>sec"
    )
    feed = read_feed(cut, "application/xml", "http://x.invalid/cut")
    assert [i.dedupe_key for i in feed.items][1].endswith("g2")


def test_last_description_only_entry_of_a_complete_but_malformed_feed_is_kept() -> None:
    # &nbsp; is not an XML entity: feedparser says bozo, yet the document is whole
    doc = rss("<title>a&nbsp;b</title>", "<description>last, whole</description>")
    feed = read_feed(doc, "application/xml", "http://x.invalid/f")
    assert [i.text for i in feed.items] == ["", "last, whole"]
    assert feed.skipped == 0


def test_plain_text_titles_and_content_are_not_read_as_html() -> None:
    doc = atom(
        '<title type="text">a &lt;b&gt; is not a tag</title><id>urn:1</id>'
        '<content type="text">if a &lt;b&gt; c &amp;amp; d</content>'
    )
    (item,) = parse_feed(doc)
    assert (item.title, item.text) == ("a <b> is not a tag", "if a <b> c &amp; d")
    (cdata,) = parse_feed(rss("<title><![CDATA[brackets <angle> & ampersand]]></title>"))
    assert cdata.title == "brackets <angle> & ampersand"
    (markup,) = parse_feed(atom('<title type="html">&lt;b&gt;bold&lt;/b&gt; &amp;amp;</title>'))
    assert markup.title == "bold &"
