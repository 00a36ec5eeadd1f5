"""API latency under steady load: p50/p99 of /v1/items with 100,000 items stored.

Seeds a database (through the worker's own store) with ITEMS items over 100
sources, starts ``atlas api`` as its own process on 127.0.0.1 (waiting for its
READY=1), then — from this process — sends a steady, open-loop 200 requests per
second for --seconds: a mix of first pages, source filters, next pages (cursors),
time windows and full-text searches. Latency is measured from the moment each
request was due to be sent (so a stalled server cannot hide queued requests).

Prints JSON: p50/p90/p99/max in milliseconds, overall and per kind, errors, and
whether p99 < 20 ms (the target of issue 4).

    .venv/bin/python bench/api_latency.py [--items 100000] [--rate 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from atlas.core.model import Item, Job, JobResult  # noqa: E402
from atlas.core.scheduler import Schedule  # noqa: E402
from atlas.core.store import open_store  # noqa: E402
from tests.support.feeds import api_config, write_json  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.seeding import rss_source  # noqa: E402

WORDS = [
    "harbour",
    "lighthouse",
    "keeper",
    "storm",
    "tide",
    "reef",
    "beacon",
    "lens",
    "clockwork",
    "ship",
    "coast",
    "signal",
    "fog",
    "night",
    "island",
    "cliff",
    "wave",
    "sailor",
    "chart",
    "compass",
    "anchor",
    "rope",
    "gull",
]


def seed(db: Path, total: int, sources: int = 100) -> None:
    store = open_store(db, 10)
    rng = random.Random(7)
    srcs = [rss_source(f"source-{i}") for i in range(sources)]
    store.sync_sources(srcs, [s.name for s in srcs], time.time())
    per = total // sources
    start = 1_600_000_000.0
    for i, s in enumerate(srcs):
        items = []
        for j in range(per):
            words = " ".join(rng.choice(WORDS) for _ in range(60))
            items.append(
                Item(
                    title=f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}-{j}",
                    text=words,
                    guid=f"{s.name}-{j}",
                    url=f"https://{s.name}.example.invalid/{j}",
                    published_at=start + rng.random() * 100_000_000,
                )
            )
        store.apply(JobResult(Job(s), "ok", time.time(), 0.0, items=tuple(items)), Schedule())
    store.conn.execute("PRAGMA optimize")
    store.close()


def start_api(config: Path, notify: Path) -> subprocess.Popen[bytes]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=str(notify))
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlas", "api", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while b"READY=1" not in sock.recv(4096):
        pass
    sock.close()
    return proc


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": round(percentile(values, 50) * 1000, 2),
        "p90": round(percentile(values, 90) * 1000, 2),
        "p99": round(percentile(values, 99) * 1000, 2),
        "max": round(max(values) * 1000, 2) if values else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="atlas-bench-api-") as tmp:
        db = Path(tmp) / "atlas.db"
        t0 = time.perf_counter()
        seed(db, args.items)
        seeded_s = time.perf_counter() - t0
        port = free_port()
        config = write_json(Path(tmp) / "api.json", api_config(db, port, page_size=100))
        proc = start_api(config, Path(tmp) / "notify.sock")
        try:
            result = load(port, args)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    result["items"] = args.items
    result["seedSeconds"] = round(seeded_s, 1)
    print(json.dumps(result, indent=2))


def load(port: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(11)
    # next-page cursors to replay, collected before the measurement
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    cursors = []
    for i in range(50):
        conn.request("GET", f"/v1/items?limit=20&source=source-{i}")
        body = json.loads(conn.getresponse().read())
        cursors.append(body["nextCursor"])
    conn.close()

    def make_path() -> tuple[str, str]:
        roll = rng.random()
        if roll < 0.4:
            return "first-page", "/v1/items?limit=20"
        if roll < 0.6:
            return "by-source", "/v1/items?" + urlencode(
                {"source": f"source-{rng.randrange(100)}", "limit": 20}
            )
        if roll < 0.8:
            return "next-page", "/v1/items?" + urlencode(
                {"cursor": rng.choice(cursors), "limit": 20}
            )
        if roll < 0.9:
            since = 1_600_000_000 + rng.randrange(90_000_000)
            return "time-window", "/v1/items?" + urlencode(
                {"since": since, "until": since + 3_000_000, "limit": 20}
            )
        return "search", "/v1/items?" + urlencode(
            {"q": f"{rng.choice(WORDS)} {rng.choice(WORDS)}", "limit": 20}
        )

    total = int(args.rate * args.seconds)
    plan = [(i / args.rate, *make_path()) for i in range(total)]
    results: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    next_index = [0]
    start = time.perf_counter() + 0.5

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total:
                break
            due, kind, path = plan[i]
            delay = start + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status = 0
            latency = time.perf_counter() - (start + due)
            with lock:
                results.append((kind, latency, status))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    all_latencies = [lat for _, lat, _ in results]
    kinds = sorted({k for k, _, _ in results})
    overall = summary(all_latencies)
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "achievedRate": round(len(results) / elapsed, 1),
        "errors": sum(1 for _, _, s in results if s != 200),
        "latencyMs": overall,
        "byKindMs": {k: summary([lat for kk, lat, _ in results if kk == k]) for k in kinds},
        "target": {"p99Ms": 20.0, "met": overall["p99"] < 20.0},
    }


if __name__ == "__main__":
    main()
