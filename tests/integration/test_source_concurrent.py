"""Concurrent fetches into one fresh git cache (two `--dry-run`s at once take no lock):
every one gets the same commit's tree, none an OSError. Real git, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from reconciler.host.paths import host_layout
from reconciler.source import checkout
from tests.support.cli import dry_run_args
from tests.support.git import git

ROUNDS = 5
AT_ONCE = 6


def _checkouts_at_once(repo: str, cache: Path, n: int) -> list[object]:
    """What ``n`` threads released together get from ``checkout``: a SHA or an error."""
    start = threading.Barrier(n)
    results: list[object] = []

    def one() -> None:
        start.wait()
        try:
            results.append(checkout(repo, "main", ".", cache).revision.sha)
        except Exception as exc:  # the test reports every failure
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_concurrent_checkouts_into_a_fresh_cache_all_succeed(tmp_path: Path, remote) -> None:
    bare, work = remote
    head = git(work, "rev-parse", "HEAD").strip()
    for round_ in range(ROUNDS):
        cache = tmp_path / f"cache-{round_}"
        cache.mkdir()
        assert _checkouts_at_once(str(bare), cache, AT_ONCE) == [head] * AT_ONCE
        (mirror,) = (p for p in cache.iterdir() if p.is_dir())
        assert (mirror / "trees" / head).is_dir()
        assert not [p for p in (mirror / "trees").iterdir() if p.name.startswith(".")], (
            "no half-made folder is left behind"
        )
        assert not [p for p in mirror.iterdir() if p.name.startswith(".mirror-")]


def test_two_dry_runs_at_once_with_a_fresh_cache_both_plan(tmp_path: Path, remote) -> None:
    bare, _ = remote
    code = "import sys; from atlas.cli import main; sys.exit(main(sys.argv[1:]))"
    for round_ in range(3):
        root = tmp_path / f"root-{round_}"
        layout = host_layout("user", root, dict(os.environ))
        (layout.on_disk(layout.reconciler_dir) / "git").mkdir(parents=True)  # fresh cache
        run = [sys.executable, "-c", code, *dry_run_args(bare, "development", root)]
        procs = [
            subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert "Traceback" not in err, err
            assert p.returncode == 2, out + err  # a dry run that found changes
