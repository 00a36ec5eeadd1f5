"""System metrics from psutil, and the small pure parsers around them."""

from __future__ import annotations

import os
from pathlib import Path

from atlas.monitoring.collect_system import SystemCollector, parse_max_open_files
from seams.envfile import parse as parse_env_file

LIMITS = """\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
"""


def test_parse_max_open_files() -> None:
    assert parse_max_open_files(LIMITS) == 1024
    assert parse_max_open_files(LIMITS.replace("1024  ", "unlimited")) is None
    assert parse_max_open_files("") is None


def test_system_collector_reports_the_host_and_this_process(tmp_path: Path) -> None:
    c = SystemCollector(tmp_path)
    got = {(s.name, s.labels): s.value for s in c.collect()}
    names = {name for name, _ in got}
    for name in (
        "atlas_system_cpu_ratio",
        "atlas_system_cpus",
        "atlas_system_load_average",
        "atlas_system_memory_used_ratio",
        "atlas_system_swap_used_ratio",
        "atlas_system_disk_used_ratio",
        "atlas_system_network_receive_bytes_total",
        "atlas_process_open_fds",
        "atlas_process_max_fds",
    ):
        assert name in names, name
    assert 0 <= got[("atlas_system_disk_used_ratio", (("mount", "/"),))] <= 1
    assert got[("atlas_system_cpus", ())] == os.cpu_count()
    own = (("component", "monitoring"), ("unit", "atlas-monitoring.service"))
    fds = got[("atlas_process_open_fds", own)]
    assert (
        fds == len(os.listdir("/proc/self/fd")) or abs(fds - len(os.listdir("/proc/self/fd"))) <= 2
    )
    windows = sorted(
        dict(lbl)["window"] for name, lbl in got if name == "atlas_system_load_average"
    )
    assert windows == ["15m", "1m", "5m"]


def test_a_process_that_is_gone_is_skipped(tmp_path: Path) -> None:
    c = SystemCollector(tmp_path)
    samples = c.collect({("core", "atlas-core.service"): 2**22 + 12345})
    assert not [s for s in samples if s.label_map.get("unit") == "atlas-core.service"]


def test_parse_env_file() -> None:
    text = (
        "# Managed by Atlas\n"
        'ATLAS_SECRET_A="p\\"q\\\\r"\n'
        "ATLAS_SECRET_B=plain\n"
        "ATLAS_SECRET_C='single $quoted'\n"
        "\n"
        "not a line\n"
    )
    assert parse_env_file(text) == {
        "ATLAS_SECRET_A": 'p"q\\r',
        "ATLAS_SECRET_B": "plain",
        "ATLAS_SECRET_C": "single $quoted",
    }
