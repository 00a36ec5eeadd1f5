"""Ingestion throughput, end to end, beside bare feedparser on the same bytes.

A separate process serves FEEDS RSS 2.0 feeds of ENTRIES entries each on
127.0.0.1. In this process, each round measures:

* feedparser        — ``feedparser.parse(body)`` of every feed's bytes (defaults);
* feedparser_lean   — the same with the flags Atlas passes (no HTML sanitising or
                      relative-URI rewriting: Atlas turns entry HTML into text);
* atlas             — a fresh database, then Atlas's worker fetching every feed over
                      HTTP, parsing, deduplicating and storing (one transaction per
                      feed, FTS index included) until nothing is due.

Prints JSON: items per second of each (best of --rounds), and atlas / feedparser.
Target (issue 4): atlas ≥ 75% of bare feedparser.

    .venv/bin/python bench/ingest_throughput.py [--feeds 200] [--entries 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from atlas.core import settings as core_settings  # noqa: E402
from atlas.core.store import open_store  # noqa: E402
from atlas.core.worker import Worker  # noqa: E402
from tests.support.feeds import Entry, core_config, rss20, source  # noqa: E402

PARAGRAPH = (
    "<p>The keeper climbed the <b>spiral stairs</b> at dusk, trimmed the wick and "
    'wound the clockwork that turned the <a href="/lens">Fresnel lens</a>. Ships '
    "passing the reef would see its beam every twelve seconds.</p>"
)


def make_feeds(feeds: int, entries: int) -> dict[str, bytes]:
    out = {}
    for f in range(feeds):
        items = [
            Entry(
                title=f"Feed {f} story {i}: news from the coast",
                link=f"https://news{f}.example.invalid/story/{i}",
                guid=f"urn:feed{f}:story{i}",
                text=PARAGRAPH * 2,
                published=1_700_000_000.0 + i * 600,
            )
            for i in range(entries)
        ]
        out[f"/feed{f}.xml"] = rss20(items, title=f"Feed {f}")
    return out


def serve(feeds: dict[str, bytes], port_out: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = feeds.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), Handler)
    port_out.send(httpd.server_address[1])
    httpd.serve_forever()


def bare(bodies: list[bytes], **flags: Any) -> tuple[float, int]:
    started = time.perf_counter()
    n = 0
    for body in bodies:
        n += len(feedparser.parse(body, **flags).entries)
    return time.perf_counter() - started, n


def atlas_round(port: int, paths: list[str], concurrency: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp:
        db = Path(tmp) / "atlas.db"
        sources = [
            source(
                f"feed-{i}",
                url=f"http://127.0.0.1:{port}{p}",
                rateLimit={"requestsPerMinute": 600000, "burst": 1000},
            )
            for i, p in enumerate(paths)
        ]
        cfg = core_config(db, sources, concurrency=concurrency, maxBodyBytes=20_000_000)
        settings = core_settings.from_dict(cfg, Path("core.json")).for_instance(1)
        store = open_store(db, 10)
        started = time.perf_counter()
        worker = Worker(settings, store)
        worker.start()
        worker.run_until_idle(600)
        elapsed = time.perf_counter() - started
        worker.shutdown()
        stored = store.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        failed = store.conn.execute(
            "SELECT COUNT(*) FROM sources WHERE consecutive_errors > 0"
        ).fetchone()[0]
        store.close()
        if failed:
            raise SystemExit(f"{failed} sources failed during the benchmark")
        return elapsed, int(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    feeds = make_feeds(args.feeds, args.entries)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(feeds, sender), daemon=True)
    server.start()
    port = receiver.recv()
    bodies = list(feeds.values())
    best: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            for name, run in (
                ("feedparser", lambda: bare(bodies)),
                (
                    "feedparser_lean",
                    lambda: bare(bodies, sanitize_html=False, resolve_relative_uris=False),
                ),
                ("atlas", lambda: atlas_round(port, list(feeds), args.concurrency)),
            ):
                seconds, items = run()
                expected = args.feeds * args.entries
                if items != expected:
                    raise SystemExit(f"{name}: {items} items, expected {expected}")
                best[name] = max(best.get(name, 0.0), items / seconds)
    finally:
        server.terminate()
    result = {
        "feeds": args.feeds,
        "entriesPerFeed": args.entries,
        "feedBytes": sum(len(b) for b in bodies),
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "itemsPerSecond": {k: round(v, 1) for k, v in best.items()},
        "atlasVsFeedparser": round(best["atlas"] / best["feedparser"], 3),
        "atlasVsFeedparserLean": round(best["atlas"] / best["feedparser_lean"], 3),
        "target": 0.75,
    }
    result["meetsTarget"] = result["atlasVsFeedparser"] >= 0.75
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
