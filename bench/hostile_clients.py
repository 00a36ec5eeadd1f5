"""/healthz under hostile clients: 2,000 idle and 200 half-open connections held.

Starts each server as its own process on 127.0.0.1 with the descriptor limit the
units give it (``LimitNOFILE=4096``, the deployment default): ``atlas api`` over a
seeded database, and the stdlib server that the webhook, core's /metrics and the
agent all run (``seams.httpserver``, with a /healthz route). Then, from this
process, opens ``--idle`` connections that send nothing and ``--half-open`` ones
that send half a request head, holds them, and (after ``SETTLE_S``) times
``--probes`` /healthz requests one after another on fresh connections; the first
probe right after the flood connected is reported on its own.

Prints JSON per server: connections held, probes, failures, p50/p99/max in ms of
/healthz (before and under the load), and whether max < 100 ms (issue 12).

    .venv/bin/python bench/hostile_clients.py [--idle 2000] [--half-open 200] [--probes 200]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.feeds import api_config, write_json  # noqa: E402
from tests.support.hostile_clients import health_figures, health_once, held, raise_open_files  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.seeding import items, seed  # noqa: E402

NOFILE = 4096  # schemas/v1/deployment.json: resources.nofile
TARGET_MS = 100.0
SETTLE_S = 1.0  # after the flood is connected, before the probes are timed
STDLIB_SERVER = """
import sys, threading
from seams.httpserver import HttpServer, Limits, Response
srv = HttpServer("127.0.0.1", int(sys.argv[1]),
                 {("GET", "/healthz"): lambda r: Response.json(200, {"status": "ok"})},
                 limits=Limits(request_timeout=60.0))
srv.start()
threading.Event().wait()
"""


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = str(ROOT)
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_limit_files,  # noqa: PLW1509 - setrlimit only, before exec
        )


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while health_once(port, timeout=1)[0] != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server on port {port} did not come up")
        time.sleep(0.1)


def measure(name: str, argv: list[str], port: int, args: argparse.Namespace, tmp: Path) -> dict:
    proc = _start(argv, tmp / f"{name}.log")
    try:
        _wait_healthy(port, proc)
        before = health_figures(port, args.probes)
        with held(port, args.idle, args.half_open, within=60) as socks:
            first = health_once(port)  # while the server may still be accepting the flood
            time.sleep(SETTLE_S)
            under = health_figures(port, args.probes)
            alive = len(socks)
    finally:
        proc.terminate()
        proc.wait(30)
    log_lines = len((tmp / f"{name}.log").read_text().splitlines())
    return {
        "connections_held": alive,
        "idle": args.idle,
        "half_open": args.half_open,
        "healthz_before": before,
        "healthz_first_after_flood_ms": round(first[1] * 1000, 2),
        "healthz_under_load": under,
        "server_log_lines": log_lines,
        "max_under_100ms": under["failed"] == 0 and under["max_ms"] < TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--half-open", type=int, default=200)
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    raise_open_files(2 * (args.idle + args.half_open) + 1000)
    with tempfile.TemporaryDirectory(prefix="atlas-hostile-") as d:
        tmp = Path(d)
        db = tmp / "atlas.db"
        seed(db, {"a": items("a", 100)}).close()
        api_port, small_port = free_port(), free_port()
        config = write_json(tmp / "api.json", api_config(db, api_port))
        api = [sys.executable, "-m", "atlas", "api", "--config", str(config)]
        small = [sys.executable, "-c", STDLIB_SERVER, str(small_port)]
        result = {
            "api": measure("api", api, api_port, args, tmp),
            "stdlib_server (webhook, core /metrics, agent)": measure(
                "stdlib", small, small_port, args, tmp
            ),
            "server_nofile": NOFILE,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
