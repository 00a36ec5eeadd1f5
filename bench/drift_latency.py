#!/usr/bin/env python3
"""Drift-to-healed: a hand edit of a unit file and a hand `systemctl --user stop`,
each healed by `atlas reconcile --watch` at its default 60 s poll interval (the live
drift watcher wakes it).

Each trial (i) appends a line to atlas-core.service and waits until the file holds
what Atlas wrote again, or (ii) stops atlas-monitoring.service and waits until it is
active again; between trials it waits for the heal's cycle to end. Target: median
under 2 s for both. Prints JSON.

    sudo .venv/bin/python bench/drift_latency.py [--trials 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx
from _site import BenchSite, figures, wait_for


def cycles(site: BenchSite) -> float:
    text = httpx.get(f"http://127.0.0.1:{site.reconciler}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("atlas_reconcile_total{")
    )


def settled(site: BenchSite, before: float) -> None:
    """The heal's cycle has ended (its verify included) and the host is at rest."""
    wait_for(lambda: cycles(site) > before, 60, "the heal's cycle to end")
    time.sleep(0.5)


def edit_trial(site: BenchSite) -> float:
    unit = site.units_dir / "atlas-core.service"
    original = unit.read_bytes()
    before = cycles(site)
    edited = time.monotonic()
    unit.write_bytes(original + b"# a hand edit\n")
    wait_for(lambda: unit.read_bytes() == original, 60, "the unit file restored")
    took = time.monotonic() - edited
    settled(site, before)
    return took


def stop_trial(site: BenchSite, name: str) -> float:
    before = cycles(site)
    site.manager.systemctl("stop", name)
    stopped = time.monotonic()
    wait_for(lambda: site.show(name, "ActiveState")["ActiveState"] == "active", 60, f"{name} up")
    took = time.monotonic() - stopped
    settled(site, before)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    with BenchSite() as site, site.watching("60s"):
        time.sleep(2.0)
        edits = [edit_trial(site) for _ in range(args.trials)]
        stops = [stop_trial(site, "atlas-monitoring.service") for _ in range(args.trials)]
        print(
            json.dumps(
                {
                    "trials": args.trials,
                    "poll_interval_s": 60,
                    "hand_edit_to_restored_s": figures(edits),
                    "hand_stop_to_active_s": figures(stops),
                    "target_median_under_2s": {
                        "hand_edit": statistics.median(edits) < 2.0,
                        "hand_stop": statistics.median(stops) < 2.0,
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
