#!/usr/bin/env python3
"""Blue-green: from a commit of a new api version to the completed rollout, split into
release install, start of the new replicas, pre-promotion analysis and switch (the
scale-down delay, then the stable replicas restarted on the new version and the new
ones stopped), with a client on 127.0.0.1 sending requests all the while: failed
requests during it (target 0). Real wheels, a private systemd user manager (root),
``atlas reconcile --once``. Prints JSON.

    sudo .venv/bin/python bench/bluegreen.py [--replicas 2] [--interval 2s] [--count 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

from _site import BenchSite

from tests.support.net import free_port_run
from tests.support.traffic import Traffic
from tests.support.wheels import add_atlas_wheel, build_wheelhouse

API = "  component: api\n  version: {}\n"


def configure(site: BenchSite, wheels: Path, args: argparse.Namespace) -> None:
    site.change("environments/development/environment.yaml", "  logLevel: debug\n",
                f"  logLevel: debug\n  releases: {{source: {wheels}}}\n")  # fmt: skip
    site.change(
        "base/deployments.yaml",
        "  replicas: 1\n  strategy: {type: rolling, maxUnavailable: 1}\n",
        f"  replicas: {args.replicas}\n  strategy:\n    type: blueGreen\n    blueGreen:\n"
        f"      previewPort: {free_port_run(2 * args.replicas, site_ports(site))}\n"
        f"      scaleDownDelay: {args.scale_down_delay}\n"
        f"      prePromotionAnalysis: {{interval: {args.interval}, count: {args.count}}}\n",
    )


def site_ports(site: BenchSite) -> tuple[int, ...]:
    return (site.api, site.core, site.monitoring, site.reconciler)


def rollout_doc(site: BenchSite) -> dict[str, object]:
    db = site.manager.state_home / "atlas/reconciler/state.db"
    with closing(sqlite3.connect(db, timeout=5)) as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'rollout:api'").fetchone()
    return dict(json.loads(value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--interval", default="2s")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--scale-down-delay", default="5s")
    args = parser.parse_args()
    wheels = build_wheelhouse(Path(tempfile.mkdtemp(prefix="bluegreen-wheels-")))
    add_atlas_wheel(wheels, "0.2.0")
    with BenchSite() as site:
        configure(site, wheels, args)
        first = site.reconcile()
        if first.returncode != 0:
            raise SystemExit(first.stdout + first.stderr)
        with Traffic(site.api) as traffic:
            committed = time.time()
            site.change("base/deployments.yaml", API.format("0.1.0"), API.format("0.2.0"))
            done = site.reconcile()
            ended = time.time()
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        doc = rollout_doc(site)
        at = {str(s["phase"]): float(s["at"]) for s in doc["steps"]}  # type: ignore[attr-defined]
        finished = float(doc["finishedAt"])  # type: ignore[arg-type]
        print(json.dumps({
            "replicas": args.replicas,
            "analysis": f"{args.count} x {args.interval}",
            "scale_down_delay": args.scale_down_delay,
            "result": doc["result"],
            "commit_to_completed_s": round(finished - committed, 2),
            "split_s": {
                "fetch_plan_and_release_install": round(at["install"] - committed, 2),
                "start_new_replicas": round(at["analysis"] - at["start"], 2),
                "analysis": round(at["promote"] - at["analysis"], 2),
                "switch_incl_scale_down_delay": round(finished - at["promote"], 2),
            },
            "reconcile_wall_s": round(ended - committed, 2),
            "requests": traffic.ok + len(traffic.failed),
            "failed_requests": len(traffic.failed),
            "failures": traffic.failed[:5],
            "target_zero_failed": not traffic.failed,
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
