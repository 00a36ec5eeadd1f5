"""``atlas core`` against hostile feeds on 127.0.0.1, the cases of issue 12:

* nested  — 3.5 KB of ``Content-Encoding: gzip, gzip`` (gzip of gzip of 2 GiB of zeros)
* plain   — the inner layer alone, ``gzip`` (2 MB that decode to 2 GiB)
* moved   — a 301 whose body is that bomb, to a good feed
* a-slow, b-slow — servers that trickle their headers a byte every 0.1 s for minutes
* good    — an ordinary feed, behind the others with ``concurrency`` 2

with the issue's settings (5 s timeout, 10 MiB body cap). Measures, for the worker
process: its peak RSS (``wait4``, as the kernel counted it) against the MemoryMax of
its unit in the example manifests, when each source was settled (stored, refused or
stalled), what /healthz said, and how long SIGTERM took to end it.

Prints JSON. Targets: peak RSS < MemoryMax; the good feeds stored within one
deadline of the stalled fetches ahead of them (10 s: past it they are not retried
in-process); exit within the stop deadline (4 s) of SIGTERM.

    .venv/bin/python bench/hostile_feeds.py [--bomb-mib 2048] [--timeout 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seams.stopping import STOP_DEADLINE_S  # noqa: E402
from tests.support.feeds import (  # noqa: E402
    FeedServer,
    NotifyListener,
    Reply,
    core_config,
    entries,
    rss20,
    source,
    write_json,
)
from tests.support.hostile import TrickleServer, gzip_bomb, gzipped  # noqa: E402
from tests.support.net import free_port  # noqa: E402

HOSTILE = ("a-slow", "b-slow", "nested", "plain", "moved")


def memory_max() -> int:
    docs = yaml.safe_load_all((ROOT / "manifests/base/deployments.yaml").read_text())
    text = next(d["spec"] for d in docs if d["spec"]["component"] == "core")["resources"][
        "memoryMax"
    ]
    return int(text[:-1]) << {"K": 10, "M": 20, "G": 30}[text[-1]]


def settled(db: Path) -> dict[str, str]:
    """Each source that has an outcome: stored, or the error it failed with."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        rows = conn.execute("SELECT name, last_success_at, last_error FROM sources").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    return {n: ("stored" if ok else err) for n, ok, err in rows if ok or err}


def healthz(port: int) -> dict[str, Any]:
    try:
        body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"error": str(exc)}
    return body


def run(bomb_mib: int, timeout_s: float, work: Path) -> dict[str, Any]:
    built = time.monotonic()
    inner = gzip_bomb(bomb_mib << 20, layers=1)
    nested = gzipped(inner)
    built = time.monotonic() - built
    with (
        FeedServer() as feeds,
        TrickleServer(0.1, 600) as slow_a,
        TrickleServer(0.1, 600) as slow_b,
    ):
        feeds.routes["/nested"] = Reply(body=nested, headers={"Content-Encoding": "gzip, gzip"})
        feeds.routes["/plain"] = Reply(body=inner, headers={"Content-Encoding": "gzip"})
        feeds.routes["/moved"] = Reply(
            301, inner, {"Location": "/good2", "Content-Encoding": "gzip"}
        )
        feeds.routes["/good"] = Reply(body=rss20(entries("good", 20)))
        feeds.routes["/good2"] = Reply(body=rss20(entries("moved", 20)))
        urls = {
            "a-slow": slow_a.url(),
            "b-slow": slow_b.url(),
        }  # first in line: they take the slots
        urls |= {n: feeds.url(f"/{n}") for n in ("nested", "plain", "moved", "good")}
        port = free_port()
        db = work / "atlas.db"
        cfg = core_config(
            db,
            [source(n, url=u) for n, u in urls.items()],
            metrics_port=port,
            timeoutSeconds=timeout_s,
            maxBodyBytes=10 << 20,
            concurrency=2,
        )
        listener = NotifyListener(work / "notify.sock")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
        env["NOTIFY_SOCKET"] = str(listener.path)
        log = (work / "core.log").open("wb")
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas",
                "core",
                "--config",
                str(write_json(work / "core.json", cfg)),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            listener.wait_for("READY=1")
            seen: dict[str, float] = {}
            health: dict[str, Any] = {}
            limit = started + 6 * 2 * timeout_s + 60
            while time.monotonic() < limit:
                now = time.monotonic() - started
                for name in settled(db):
                    seen.setdefault(name, round(now, 2))
                health = healthz(port)
                if health.get("stalledSources") == 2:
                    seen.setdefault("both stalled (healthz)", round(now, 2))
                if {"good", "nested", "plain", "moved"} <= seen.keys() and (
                    health.get("stalledSources") == 2
                ):
                    break
                time.sleep(0.1)
            asked = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            stop_s = time.monotonic() - asked
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            listener.close()
            log.close()
    outcomes = settled(db)
    peak = usage.ru_maxrss * 1024
    cap = memory_max()
    return {
        "bomb_decoded_mib": bomb_mib,
        "nested_bomb_bytes": len(nested),
        "plain_bomb_bytes": len(inner),
        "bombs_built_s": round(built, 1),
        "timeout_s": timeout_s,
        "peak_rss_mib": round(peak / 2**20, 1),
        "memory_max_mib": cap >> 20,
        "under_memory_max": peak < cap,
        "settled_after_s": seen,
        "good_stored_after_s": seen.get("good"),
        "outcomes": {n: outcomes.get(n, "none") for n in (*HOSTILE, "good")},
        "healthz": {k: health.get(k) for k in ("status", "stalledSources", "stalled")},
        "sigterm_to_exit_s": round(stop_s, 2),
        "exit_status": proc.returncode,
        "stop_deadline_s": STOP_DEADLINE_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bomb-mib", type=int, default=2048, help="decoded size of the bombs")
    parser.add_argument("--timeout", type=float, default=5.0, help="fetch timeout, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atlas-hostile-") as work:
        print(json.dumps(run(args.bomb_mib, args.timeout, Path(work)), indent=2))


if __name__ == "__main__":
    main()
