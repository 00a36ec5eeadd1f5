"""Drift seen in seconds: `atlas reconcile --watch` (polling only hourly here) heals a
hand edit and a hand stop through its live watcher, leaves systemd's own Restart=
alone, and does not wake itself with its own writes.

The promise is "within a few seconds": the settle window (0.25 s) plus one self-heal
cycle. The deadlines allow a busy 2-core machine: 15 s.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from atlas.usermanager import PrivateManager
from tests.support.sites import Site

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

PROMISE = 15.0  # seconds: settle window + one cycle, with room for a busy machine


@pytest.fixture
def watched(systemd_user: PrivateManager) -> Iterator[tuple[Site, subprocess.Popen[str]]]:
    site = Site(systemd_user, systemd_user.base / "repos")
    done = site.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    proc = site.watch()
    try:
        # /healthz answers before the first cycle ends; the watcher is armed at its end
        within(PROMISE, "the first cycle", lambda: cycles(site) >= 1)
        yield site, proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def metrics(site: Site) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{site.reconciler}/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def cycles(site: Site) -> float:
    return sum(v for k, v in metrics(site).items() if k.startswith("atlas_reconcile_total{"))


def live(site: Site, kind: str) -> float:
    return metrics(site).get(f'atlas_live_drift_total{{kind="{kind}"}}', -1.0)


def within(seconds: float, what: str, ok: Callable[[], bool]) -> float:
    started = time.monotonic()
    while not ok():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds}s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_hand_edit_and_a_hand_stop_are_healed_within_seconds(
    watched: tuple[Site, subprocess.Popen[str]],
) -> None:
    site, _ = watched
    unit = site.units_dir / "atlas-core.service"
    original = unit.read_text()
    unit.write_text(original.replace("MemoryMax=268435456", "MemoryMax=536870912"))
    within(PROMISE, "the unit file restored", lambda: unit.read_text() == original)
    within(
        PROMISE, "atlas-core active", lambda: site.state("atlas-core.service") == "active/running"
    )
    assert live(site, "file-modified") >= 1

    site.manager.systemctl("stop", "atlas-monitoring.service")
    assert site.state("atlas-monitoring.service") == "inactive/dead"
    within(
        PROMISE,
        "atlas-monitoring started again",
        lambda: site.state("atlas-monitoring.service") == "active/running",
    )
    assert live(site, "unit-stopped") >= 1
    within(PROMISE, "no drift left", lambda: site.status()["drift"] == [])


def test_its_own_writes_do_not_wake_it(watched: tuple[Site, subprocess.Popen[str]]) -> None:
    site, _ = watched
    config = site.config_dir / "api.json"
    original = config.read_text()
    config.write_text(original + "\n")  # healed: a rewrite and a restart of atlas-api
    within(PROMISE, "api.json restored", lambda: config.read_text() == original)
    before = -1.0
    # the heal's cycle ends (verify included) and then nothing wakes the loop again
    deadline = time.monotonic() + PROMISE
    while cycles(site) != before and time.monotonic() < deadline:
        before = cycles(site)
        time.sleep(2.0)
    time.sleep(5.0)
    assert cycles(site) == before, "the loop woke itself after its own heal"
    assert live(site, "file-modified") == 1


def test_a_crash_restarted_by_systemd_is_not_drift(
    watched: tuple[Site, subprocess.Popen[str]],
) -> None:
    site, _ = watched
    before, old_pid = cycles(site), site.pid("atlas-core.service")
    site.manager.systemctl("kill", "--kill-whom=main", "--signal=KILL", "atlas-core.service")
    # Restart=on-failure, RestartSec=2s: systemd brings it back by itself
    within(
        PROMISE,
        "atlas-core restarted by systemd",
        lambda: (
            site.state("atlas-core.service") == "active/running"
            and site.pid("atlas-core.service") not in (0, old_pid)
        ),
    )
    restarts = int(site.manager.show("atlas-core.service", "NRestarts")["NRestarts"])
    assert restarts >= 1  # systemd's Restart= did it, not Atlas
    time.sleep(2.0)
    assert live(site, "unit-stopped") == 0 and live(site, "unit-failed") == 0
    assert cycles(site) == before, "the watcher woke the loop for systemd's own restart"
