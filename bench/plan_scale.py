#!/usr/bin/env python3
"""Time `atlas validate` and `atlas reconcile --dry-run` on a large repository.

Generates 1,000 Sources (one file each), 200 AlertRules and 20 AlertChannels, then
times whole processes (median of --runs): `atlas validate`, `atlas reconcile
--dry-run`, and check-jsonschema validating the same 1,000 Source files against the
same Source schema. Targets: validate and dry-run under 1.0 s; validate faster than
check-jsonschema. Prints JSON.

    .venv/bin/python bench/plan_scale.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def generate(root: Path, sources: int = 1000, rules: int = 200, channels: int = 20) -> list[Path]:
    (root / "base/sources").mkdir(parents=True)
    (root / "environments/bench").mkdir(parents=True)
    (root / "environments/bench/environment.yaml").write_text(
        "apiVersion: atlas/v1\nkind: Environment\nmetadata: {name: bench}\n"
        "spec: {api: {port: 18080}, core: {metricsPort: 19101}, monitoring: {metricsPort: 19102}}\n"
    )
    files = []
    for i in range(sources):
        path = root / f"base/sources/source-{i:04d}.yaml"
        path.write_text(
            f"apiVersion: atlas/v1\nkind: Source\nmetadata:\n  name: feed-{i:04d}\n  labels: {{shard: s{i % 7}}}\n"
            f"spec:\n  type: rss\n  url: https://feeds{i % 50}.example.com/{i}.xml\n  interval: {5 + i % 55}m\n"
            f"  rateLimit: {{requestsPerMinute: 30, burst: 3}}\n"
        )
        files.append(path)
    with (root / "base/channels.yaml").open("w") as fh:
        for i in range(channels):
            fh.write(
                f"---\napiVersion: atlas/v1\nkind: AlertChannel\nmetadata: {{name: hook-{i:02d}}}\n"
                f"spec:\n  type: webhook\n  webhook: {{url: 'http://127.0.0.1:{20000 + i}/alerts'}}\n"
            )
    with (root / "base/rules.yaml").open("w") as fh:
        for i in range(rules):
            fh.write(
                f"---\napiVersion: atlas/v1\nkind: AlertRule\nmetadata: {{name: rule-{i:03d}}}\n"
                f'spec:\n  metric: atlas_ingest_source_errors{{source="feed-{i:04d}"}}\n'
                f"  op: '>='\n  threshold: 3\n  for: 5m\n  channels: [hook-{i % channels:02d}]\n"
            )
    (root / "base/deployments.yaml").write_text(
        (PROJECT / "manifests/base/deployments.yaml").read_text()
    )
    return files


def timed(cmd: list[str], runs: int, ok: tuple[int, ...]) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - started)
        if done.returncode not in ok:
            raise SystemExit(f"{cmd[:3]} exited {done.returncode}: {done.stderr[-2000:]}")
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp:
        repo = Path(tmp) / "repo"
        files = generate(repo)
        root = Path(tmp) / "root"
        root.mkdir()
        atlas = str(BIN / "atlas")
        validate = timed([atlas, "validate", str(repo)], args.runs, (0,))
        dry_run = timed(
            [
                atlas,
                "reconcile",
                "--dry-run",
                "--repo",
                str(repo),
                "--env",
                "bench",
                "--scope",
                "user",
                "--root",
                str(root),
                "--output",
                "json",
            ],
            args.runs,
            (2,),
        )
        checker = timed(
            [
                str(BIN / "check-jsonschema"),
                "--schemafile",
                str(PROJECT / "schemas/v1/source.json"),
                *map(str, files),
            ],
            args.runs,
            (0,),
        )
    result = {
        "repository": {"sources": 1000, "alert_rules": 200, "alert_channels": 20},
        "runs": args.runs,
        "atlas_validate": validate,
        "atlas_reconcile_dry_run": dry_run,
        "check_jsonschema_1000_sources": checker,
        "validate_speedup_vs_check_jsonschema": round(
            checker["median_s"] / validate["median_s"], 2
        ),
        "targets": {
            "validate_under_1s": validate["median_s"] < 1.0,
            "dry_run_under_1s": dry_run["median_s"] < 1.0,
            "validate_faster_than_check_jsonschema": validate["median_s"] < checker["median_s"],
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
