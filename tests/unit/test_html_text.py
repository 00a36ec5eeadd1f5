"""HTML to text with a real parser: entities, attributes, malformed and
script/style-laden markup, for fragments (feed entries) and whole pages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from atlas.core import html_text


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("Why 1 &lt; 2 and 3 &gt; 2 matter", "Why 1 < 2 and 3 > 2 matter"),
        ("Why 1 < 2 and 3 > 2 matter", "Why 1 < 2 and 3 > 2 matter"),
        ('<a title="a &gt; b" href="/x">link</a> after', "link after"),
        ("<a title='x > y' href=\"/x\">link</a>", "link"),
        (
            "AT&amp;T &amp;amp; &#8220;quoted&#8221; &eacute;t&eacute; &#x1F600;",
            "AT&T &amp; “quoted” été 😀",
        ),
        ("Fish &chips &bogus; & more", "Fish &chips &bogus; & more"),
        ("non&nbsp;breaking", "non breaking"),
        ("<![CDATA[raw]]> text", "text"),
    ],
)
def test_fragment_entities_and_attributes(fragment: str, text: str) -> None:
    assert html_text.to_text(fragment) == text


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("<p>unclosed <b>bold <i>both</p><p>next", "unclosed bold both\n\nnext"),
        ("<div><p>a</div>b</p>", "a\n\nb"),
        ("</p></div>stray closers", "stray closers"),
        ("a <b", "a"),
        ("<<<>>> text", "<<<>>> text"),
        ("x<br>y<br/>z", "x\ny\nz"),
        ("<ul><li>one<li>two</ul>", "one\n\ntwo"),
        ("<table><tr><td>c1</td><td>c2</td></tr><tr><td>d</td></tr></table>", "c1c2\n\nd"),
    ],
)
def test_fragment_malformed_markup(fragment: str, text: str) -> None:
    assert html_text.to_text(fragment) == text


@pytest.mark.parametrize(
    "fragment",
    [
        "<script>var a = '</p>'; if (a < b) {}</script>kept",
        "<SCRIPT type=text/javascript>document.write('<b>x</b>')</SCRIPT>kept",
        "<style>p > a { color: red }</style>kept",
        "<noscript><img src=x></noscript><template><p>t</p></template>kept",
        "<svg><text>drawn</text></svg><math><mi>x</mi></math>kept",
        "<!-- a comment with <p>markup</p> -->kept",
        "<iframe src=x>fallback</iframe>kept",
        "<script>never closed</p>and never shown",
    ],
)
def test_fragment_drops_scripts_styles_and_comments(fragment: str) -> None:
    expected = "" if "never closed" in fragment else "kept"
    assert html_text.to_text(fragment) == expected


def test_plain_text_fragment_is_only_normalized() -> None:
    assert html_text.to_text("  two   spaces \n\n\n\n lines ") == "two spaces\n\nlines"
    assert html_text.to_text("") == ""


def test_page_entities_in_title_and_body() -> None:
    page = (
        "<!doctype html><html><head><title>Why 1 &lt; 2 &amp; 3 &gt; 2</title>"
        "<script>var x = '<title>not this</title>';</script>"
        "<style>body > p { margin: 0 }</style></head>"
        '<body><p title="a &gt; b">caf&eacute; &mdash; 5 &lt; 6</p></body></html>'
    )
    assert html_text.extract(page) == ("Why 1 < 2 & 3 > 2", "café — 5 < 6")


def test_page_main_content_title_fallbacks_and_malformed() -> None:
    page = (
        '<html><head><meta property="og:title" content="From &amp; OG"></head><body>'
        "<nav>menu</nav><article><h1>Head</h1><p>Body <b>text</article>"
        "<footer>foot</footer>"
    )
    assert html_text.extract(page) == ("From & OG", "Head\n\nBody text")
    assert html_text.extract("<h1>Only heading</h1><p>para")[0] == "Only heading"
    assert html_text.extract("") == ("", "")
    assert html_text.extract("<html><body><main> </main><p>outside</p>") == ("", "outside")


def test_control_characters_are_dropped() -> None:
    assert html_text.to_text("bell\x07 and \x01control\x00<b>x</b>") == "bell and controlx"
    assert html_text.normalize("tab\there\x0bv\x7f") == "tab here v"


PIECES = st.sampled_from(
    ["<p>", "</p>", "<script>", "</script>", "<STYLE>", "<b>", "</b>", "<br>", "<!--", "-->",
     "&lt;", "&amp;", "&#0;", "&#xD800;", "<", ">", '"', "<a title='x>y'>", "word", " ", "\n",
     "\x00", "<svg>", "<![CDATA[", "]]>", "<li>", "é", "<template>", "</div>"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join) | st.text(max_size=80))
def test_any_fragment_gives_text_and_the_script_shortcut_changes_nothing(fragment: str) -> None:
    text = html_text.to_text(fragment)
    assert isinstance(text, str)
    title, page = html_text.extract(fragment)
    assert isinstance(title, str) and isinstance(page, str)
    body = LexborHTMLParser(fragment).body
    full = html_text._text(html_text._prepare(body)) if body is not None else ""
    assert text == (full if ("<" in fragment or "&" in fragment) else text)
