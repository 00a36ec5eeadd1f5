"""Label values in AlertRule selectors are read as PromQL reads them (issue 11):
UTF-8 stays itself, Go's escapes are decoded, anything else is a clear error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atlas.monitoring.samples import Matcher, Selector, sample
from reconciler.manifests.selectors import parse_selector, selector_problem


def selector_of(text: str) -> Selector:
    name, matchers = parse_selector(text)
    return Selector(name, tuple(Matcher.make(*m) for m in matchers))


def test_a_non_ascii_value_matches_the_series_it_names() -> None:
    sel = selector_of('atlas_ingest_source_errors{source="café"}')
    assert sel.matchers[0].value == "café"
    assert sel.matches(sample("atlas_ingest_source_errors", 1, source="café"))
    assert not sel.matches(sample("atlas_ingest_source_errors", 1, source="cafe"))


def test_non_ascii_in_a_regular_expression() -> None:
    sel = selector_of('m{city=~"Zürich|Genève"}')
    assert sel.matches(sample("m", 1, city="Genève"))


@pytest.mark.parametrize(
    ("written", "value"),
    [
        (r"a\"b", 'a"b'),
        (r"a\\b", "a\\b"),
        (r"a\nb", "a\nb"),
        (r"\u00e9", "é"),
        (r"\U0001F600", "\U0001f600"),
        (r"\x41", "A"),
        (r"\101", "A"),
        ("日本", "日本"),
    ],
)
def test_go_escapes_are_decoded(written: str, value: str) -> None:
    _, matchers = parse_selector(f'm{{l="{written}"}}')
    assert matchers == [("l", "=", value)]


@pytest.mark.parametrize("written", [r"\q", r"\uD800", r"\U00110000"])
def test_an_unknown_escape_says_what_was_expected(written: str) -> None:
    problem = selector_problem(f'm{{l="{written}"}}')
    assert problem is not None and "escape" in problem and "label value" in problem


@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=20))
def test_a_selector_prints_as_it_parses(value: str) -> None:
    """``str(selector)`` (shown in alerts and ``atlas alerts list``) reads back the same."""
    sel = Selector("m", (Matcher.make("l", "=", value),))
    assert parse_selector(str(sel)) == ("m", [("l", "=", value)])
