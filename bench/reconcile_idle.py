#!/usr/bin/env python3
"""A reconcile with nothing to change, and the idle cost of `atlas reconcile --watch`.

1. No-op reconcile on the converged example repository: the cycle as the watch loop
   runs it (in-process: fetch, validate, render, observe, plan), and for reference
   the whole `atlas reconcile --once` process. Target: the cycle under 100 ms.
2. The idle --watch loop (interval 10 s, nothing changing) measured with psutil over
   --idle seconds: CPU % of one core and resident memory. Targets: < 1 % and < 80 MB.

    sudo .venv/bin/python bench/reconcile_idle.py [--cycles 20] [--idle 120]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import psutil
from _site import BenchSite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--idle", type=float, default=120.0)
    args = parser.parse_args()
    site = BenchSite()
    try:
        first = site.atlas("reconcile", "--once", *site.reconcile_args())
        if first.returncode != 0:
            raise SystemExit(first.stdout + first.stderr)
        cycle_times = in_process_cycles(site, args.cycles)
        process_times = []
        for _ in range(5):
            started = time.perf_counter()
            done = site.atlas("reconcile", "--once", *site.reconcile_args())
            process_times.append(time.perf_counter() - started)
            assert done.returncode == 0 and "synced" in done.stdout, done.stdout + done.stderr
        idle = idle_watch(site, args.idle)
        median = statistics.median(cycle_times)
        print(
            json.dumps(
                {
                    "noop_cycle_in_process_ms": {
                        "median": round(median * 1000, 1),
                        "max": round(max(cycle_times) * 1000, 1),
                    },
                    "noop_reconcile_whole_process_s": {
                        "median": round(statistics.median(process_times), 3)
                    },
                    "idle_watch": idle,
                    "targets": {
                        "noop_cycle_under_100ms": median < 0.1,
                        "idle_cpu_under_1pct": idle["cpu_percent_of_one_core"] < 1.0,
                        "idle_rss_under_80MB": idle["rss_mb_max"] < 80,
                    },
                },
                indent=2,
            )
        )
    finally:
        site.close()


def in_process_cycles(site: BenchSite, cycles: int) -> list[float]:
    """Time Reconciler.cycle() as --watch runs it, in this process with the manager's env."""
    os.environ.update(site.manager.env)
    import reconciler
    from reconciler import compose

    access = reconciler.Access("user", Path("/"), os.environ)
    store = access.store()
    target = compose.TargetArgs(site.bare.as_posix(), "main", None, "development").resolve({})
    rec = compose.reconciler(access, store, target)
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        result = rec.cycle("interval")
        times.append(time.perf_counter() - started)
        assert result.outcome == "synced", result
    return times


def idle_watch(site: BenchSite, seconds: float) -> dict[str, float]:
    proc = subprocess.Popen(
        site.watch_command("10s"),
        env=site.manager.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(5)  # start-up and the first cycle are not idle
        ps = psutil.Process(proc.pid)
        cpu0 = ps.cpu_times()
        t0 = time.monotonic()
        rss = []
        while time.monotonic() - t0 < seconds:
            rss.append(ps.memory_info().rss)
            time.sleep(1)
        cpu1 = ps.cpu_times()
        used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        return {
            "seconds": seconds,
            "cpu_percent_of_one_core": round(100 * used / (time.monotonic() - t0), 3),
            "rss_mb_max": round(max(rss) / 2**20, 1),
            "rss_mb_median": round(statistics.median(rss) / 2**20, 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
