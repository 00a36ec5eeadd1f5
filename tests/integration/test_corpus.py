"""The feed corpus (tests/corpus/feeds/) through the real fetch path: a real HTTP
server on 127.0.0.1 serves every file with its Content-Type, one worker fetches,
parses and stores them all, and what it stored is compared with bare feedparser's
entries with content. Hostile input gets a clear error or a correct item, bounded
memory, and never stops the other sources."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from tests.support.corpus import CORPUS, Run, cases, ingest, summary
from tests.support.feeds import FeedServer, Reply, source

ROOT = Path(__file__).resolve().parents[2]


def hostile(server: FeedServer) -> list[dict[str, Any]]:
    """Sources beside the corpus that fail: a body over its limit, a broken server."""
    huge = (CORPUS / "rss20-huge-entry.xml").read_bytes()
    server.routes["/over-limit"] = Reply(body=huge, headers={"Content-Type": "text/xml"})
    server.routes["/broken"] = Reply(status=500, body=b"oops")
    return [
        source("over-limit", url=server.url("/over-limit"), maxBodyBytes=64 * 1024),
        source("broken", url=server.url("/broken")),
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return ingest(tmp_path_factory.mktemp("corpus"), hostile)


def metrics(run: Run) -> str:
    return generate_latest(run.registry).decode()


def test_corpus_is_30_to_60_small_files() -> None:
    all_cases = cases()
    assert 30 <= len(all_cases) <= 60
    for case in all_cases:
        assert len(case.body) <= 256 * 1024, case.file


def test_corpus_gives_feedparsers_entries(corpus: Run) -> None:
    outcomes = corpus.outcomes
    report = summary(outcomes)
    assert report["ratio"] >= 0.95, json.dumps(report, indent=2)
    unexplained = [m for m in report["mismatches"] if m["why"] == "UNEXPLAINED"]
    assert not unexplained, json.dumps(unexplained, indent=2)
    stale = [o.case.file for o in outcomes if o.case.mismatch and o.matches]
    assert not stale, f"explained as mismatches but now matching: {stale}"


def test_what_is_no_feed_is_a_clear_error_and_stores_nothing(
    corpus: Run,
) -> None:
    outcomes = corpus.outcomes
    failing = [o for o in outcomes if o.case.failure]
    assert len(failing) >= 4
    for o in failing:
        assert o.matches, (o.case.file, o.problems)
        assert o.stored == 0


def test_a_source_over_its_limits_fails_alone(corpus: Run) -> None:
    outcomes = corpus.outcomes
    over, broken = corpus.errors["over-limit"] or "", corpus.errors["broken"] or ""
    assert "65536" in over, over
    assert "500" in broken, broken
    assert sum(o.matches for o in outcomes) >= len(outcomes) - 1, "the rest still ingested"


def test_skipped_entries_are_counted_per_source(corpus: Run) -> None:
    text = metrics(corpus)
    assert 'atlas_ingest_entries_skipped_total{source="rss20-empty-items-xml"} 3.0' in text
    assert 'atlas_ingest_entries_skipped_total{source="rss20-truncated-xml"} 1.0' in text
    assert 'atlas_ingest_entries_skipped_total{source="rss20-basic-xml"} 0.0' in text


def test_parsing_memory_is_bounded_by_the_body(tmp_path: Path) -> None:
    """One 8 MiB entry: parsing holds a small multiple of the body (which the fetch
    limit, maxBodyBytes, bounds), measured in a fresh process."""
    script = textwrap.dedent(
        """
        import resource, sys
        from atlas.core.parse import read_feed
        para = "<p>" + "All work and no play makes a very long entry. " * 20 + "</p>"
        entry = para * (8 * 1024 * 1024 // len(para))
        body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
                f'<item><guid>g</guid><description><![CDATA[{entry}]]></description></item>'
                '</channel></rss>').encode()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        feed = read_feed(body)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        assert feed.items[0].text.endswith("long entry."), feed.items[0].text[-40:]
        print(grown / len(body))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    factor = float(done.stdout)
    assert factor < 16, f"parsing an 8 MiB entry took {factor:.1f}x its size"
