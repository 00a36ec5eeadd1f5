#!/usr/bin/env python3
"""Commit-to-converged: from `git push` of a config change to the new config active
and healthy, with `atlas reconcile --watch` on a local repository (watchdog wakes it).

Each round pushes a change to one Source's interval, then waits until atlas-core runs
with a new main PID (the new config) and answers its health check. Also reports how
much of that is the service's own start (systemd's ExecMainStartTimestamp →
ActiveEnterTimestamp of the new atlas-core). Target: median under 2 s. Prints JSON.

``--scope user`` (default): a private systemd user manager and ``--watch`` run by the
script. ``--scope system``: a PID-1 systemd container (bench/_system.py) where the
reconciler runs as atlas-reconciler.service, installed from the wheel; each look at
the container goes through nsenter (~0.05 s), which bounds the resolution.

    sudo .venv/bin/python bench/commit_to_converged.py [--rounds 10] [--scope system]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _site import BenchSite, answers, figures, git, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--scope", choices=("user", "system"), default="user")
    args = parser.parse_args()
    if args.scope == "system":
        system_scope(args.rounds)
        return
    with BenchSite() as site, site.watching("10m"):
        time.sleep(1.0)
        totals, starts = [], []
        sources = site.work / "base/sources.yaml"
        for i in range(args.rounds):
            old_pid = site.show("atlas-core.service", "MainPID")["MainPID"]
            text = sources.read_text()
            interval = f"interval: {61 + i}m"
            sources.write_text(
                text.replace("interval: 1h", interval, 1)
                if "interval: 1h" in text
                else text.replace(f"interval: {60 + i}m", interval, 1)
            )
            git(site.work, "commit", "-qam", f"round {i}")
            pushed = time.monotonic()
            git(site.work, "push", "-q", "origin", "main")
            wait_for(lambda old=old_pid: _new_active(site, old), 60, "atlas-core restart")
            wait_for(
                lambda: answers(f"http://127.0.0.1:{site.core}/healthz"), 60, "atlas-core health"
            )
            totals.append(time.monotonic() - pushed)
            props = site.show(
                "atlas-core.service",
                "ExecMainStartTimestampMonotonic",
                "ActiveEnterTimestampMonotonic",
            )
            starts.append(
                (
                    int(props["ActiveEnterTimestampMonotonic"])
                    - int(props["ExecMainStartTimestampMonotonic"])
                )
                / 1e6
            )
            time.sleep(0.5)
        report("user", totals, starts)


def report(scope: str, totals: list[float], starts: list[float]) -> None:
    median = statistics.median(totals)
    print(
        json.dumps(
            {
                "scope": scope,
                "rounds": len(totals),
                "commit_to_converged_s": figures(totals),
                "service_start_s": {"median": round(statistics.median(starts), 3)},
                "service_start_share_of_median": round(statistics.median(starts) / median, 2),
                "target_median_under_2s": median < 2.0,
            },
            indent=2,
        )
    )


def system_scope(rounds: int) -> None:
    from _system import system_site

    with system_site() as site:
        first = site.reconcile()  # hands over to atlas-reconciler.service (--watch)
        if first.returncode != 0:
            raise SystemExit(first.stdout + first.stderr)
        wait_for(lambda: site.get("http://127.0.0.1:9110/healthz")[0] == 200, 60, "reconciler")
        time.sleep(2.0)
        totals, starts = [], []
        for i in range(rounds):
            old = site.host.unit_state("atlas-core.service")["MainPID"]
            frm = "interval: 1h" if i == 0 else f"interval: {60 + i}m"
            site.change("base/sources.yaml", frm, f"interval: {61 + i}m", f"round {i}")
            pushed = time.monotonic()

            def restarted(old: str = old) -> bool:
                s = site.host.unit_state("atlas-core.service")
                return s["MainPID"] not in (old, "0") and s["ActiveState"] == "active"

            wait_for(restarted, 120, "atlas-core restart")
            wait_for(lambda: site.get("http://127.0.0.1:9101/healthz")[0] == 200, 60, "health")
            totals.append(time.monotonic() - pushed)
            props = site.host.run(
                "systemctl", "show", "-p",
                "ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic",
                "atlas-core.service",
            ).stdout  # fmt: skip
            p = dict(line.split("=", 1) for line in props.split())
            began = int(p["ExecMainStartTimestampMonotonic"])
            starts.append((int(p["ActiveEnterTimestampMonotonic"]) - began) / 1e6)
            time.sleep(0.5)
        report("system", totals, starts)


def _new_active(site: BenchSite, old_pid: str) -> bool:
    props = site.show("atlas-core.service", "MainPID", "ActiveState")
    return props["MainPID"] not in (old_pid, "0") and props["ActiveState"] == "active"


if __name__ == "__main__":
    main()
