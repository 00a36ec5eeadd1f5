"""Source leases: how fast instances claim work, and how soon a killed one's work moves.

* claim throughput — a content database of --sources due sources; --claimers threads,
  each on its own connection (as separate instances are), claim batches of --batch
  and release each claimed source in its own transaction (as a store does) until
  nothing is left. ``names: due`` passes the claim the due, free sources read just
  before (what the worker does: at most its free fetch slots); ``names: all`` passes
  every configured name and lets the claim pick. Reports sources claimed per second and the latency of one claim
  statement (p50, p99); checks that no source was claimed twice.
* takeover latency — two real ``atlas core --instance N`` processes (leaseSeconds
  --lease) and one slow feed on 127.0.0.1; the instance fetching it is SIGKILLed and
  the time until the other one's request reaches the server is measured, --kills
  times. The promise: within one lease period (plus a loop tick of 1 s).

    .venv/bin/python bench/leases.py [--sources 5000] [--batch 20] [--claimers 3]
                                     [--lease 3] [--kills 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from atlas.core.leases import RELEASE_SQL, Leases  # noqa: E402
from atlas.core.settings import SourceSettings  # noqa: E402
from atlas.core.store import open_store  # noqa: E402
from atlas.db import transaction as db_transaction  # noqa: E402
from tests.support.feeds import (  # noqa: E402
    FeedServer,
    Reply,
    Seen,
    core_config,
    entries,
    rss20,
    source,
    write_json,
)
from tests.support.net import free_port_run  # noqa: E402

NOW = 1_700_000_000.0


DUE_SQL = (
    "SELECT s.name FROM sources s JOIN source_leases l ON l.source = s.name"
    " WHERE s.next_check_at <= ? AND (l.holder IS NULL OR l.expires_at <= ?)"
    " ORDER BY s.next_check_at LIMIT ?"
)


def claim_throughput(sources: int, batch: int, claimers: int, mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "atlas.db"
        names = [f"s{i}" for i in range(sources)]
        setup = open_store(db, 10)
        setup.sync_sources(
            [
                SourceSettings(n, "text", None, True, 60.0, None, "t", None, None, None)
                for n in names
            ],
            names,
            NOW,
        )
        setup.close()
        latencies: list[float] = []
        claimed: list[str] = []
        lock = threading.Lock()

        def claimer(holder: str) -> None:
            store = open_store(db, 30)
            leases = Leases(store.conn, holder, 60.0)
            mine: list[float] = []
            got_all: list[str] = []
            while True:
                wanted = names
                if mode == "due":  # as the worker does: the due, free ones it has room for
                    rows = store.conn.execute(DUE_SQL, (NOW, NOW, batch)).fetchall()
                    wanted = [r[0] for r in rows]
                    if not wanted:
                        break
                t0 = time.perf_counter()
                got = leases.claim(wanted, NOW, batch)
                mine.append(time.perf_counter() - t0)
                if not got and mode == "all":
                    break
                for name, token in got.items():
                    # a store's transaction: push the schedule, release the lease
                    with db_transaction(store.conn):
                        store.conn.execute(
                            "UPDATE sources SET next_check_at = ? WHERE name = ?", (NOW + 60, name)
                        )
                        store.conn.execute(RELEASE_SQL, (name, token))
                    got_all.append(name)
            store.close()
            with lock:
                latencies.extend(mine)
                claimed.extend(got_all)

        threads = [threading.Thread(target=claimer, args=(f"h{i}",)) for i in range(claimers)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "sources": sources,
        "names": mode,
        "batch": batch,
        "claimers": claimers,
        "claimedTwice": len(claimed) - len(set(claimed)),
        "unclaimed": sources - len(set(claimed)),
        "sourcesPerSecond": round(len(claimed) / seconds, 1),
        "claimStatementMs": {
            "p50": round(statistics.median(latencies) * 1000, 3),
            "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        },
    }


def _start(config: Path, instance: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas",
                "core",
                "--config",
                str(config),
                "--instance",
                str(instance),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def _holder(db: Path) -> str | None:
    try:
        conn = sqlite3.connect(db, timeout=10)
        try:
            row = conn.execute("SELECT holder FROM source_leases WHERE source = 'slow'").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None
    return None if row is None else row[0]


def one_takeover(tmp: Path, lease_s: float) -> float:
    arrivals: list[float] = []

    def reply(seen: Seen) -> Reply:
        arrivals.append(time.monotonic())
        return Reply(body=rss20(entries("slow", 3)), delay_s=30.0)  # held until the kill

    with FeedServer() as server:
        server.routes["/slow"] = reply
        db = tmp / "atlas.db"
        cfg = core_config(
            db, [source("slow", url=server.url("/slow"))], metrics_port=free_port_run(2), replicas=2
        )
        cfg["leaseSeconds"] = lease_s
        cfg["fetch"]["timeoutSeconds"] = 60
        config = write_json(tmp / "core.json", cfg)
        procs = {n: _start(config, n, tmp / f"core-{n}.log") for n in (1, 2)}
        try:
            deadline = time.monotonic() + 30
            while not arrivals or _holder(db) is None:
                if time.monotonic() > deadline:
                    raise SystemExit("no instance fetched the source")
                time.sleep(0.02)
            holder = _holder(db) or ""
            victim = 1 if "/core@1/" in holder else 2
            procs[victim].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            procs[victim].wait()
            while len(arrivals) < 2:
                if time.monotonic() > killed + 3 * lease_s + 10:
                    raise SystemExit("the source was not taken over")
                time.sleep(0.005)
            return arrivals[1] - killed
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()


def takeover(lease_s: float, kills: int) -> dict[str, Any]:
    seconds = []
    for _ in range(kills):
        with tempfile.TemporaryDirectory() as tmp:
            seconds.append(one_takeover(Path(tmp), lease_s))
    return {
        "leaseSeconds": lease_s,
        "kills": kills,
        "takeoverSeconds": [round(s, 3) for s in seconds],
        "maxTakeoverSeconds": round(max(seconds), 3),
        "promise": f"<= leaseSeconds + 1 s loop tick = {lease_s + 1:g}",
        "meetsPromise": max(seconds) <= lease_s + 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--claimers", type=int, default=3)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    result = {
        "claim": [
            claim_throughput(args.sources, args.batch, args.claimers, mode)
            for mode in ("due", "all")
        ],
        "takeover": takeover(args.lease, args.kills),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
