"""Prometheus conventions in every component's /metrics (issue 11): ``process_*``
from each, no ``_created`` series, ratios 0–1 named ``_ratio``; the old ``_percent``
names stay for one release (README: Monitoring and alerting). The API's page is
checked over HTTP in tests/integration/test_metrics_promtool.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from atlas.core.metrics import CoreMetrics
from atlas.monitoring.collect_system import SystemCollector
from atlas.monitoring.exporter import Exporter
from reconciler.metrics import ReconcilerMetrics


def core_text() -> str:
    m = CoreMetrics()
    m.items.labels(source="hn", result="new").inc()
    return generate_latest(m.registry).decode()


def reconciler_text() -> str:
    m = ReconcilerMetrics()
    m.reconcile_total.labels(result="success").inc()
    return generate_latest(m.registry).decode()


def monitoring_text() -> str:
    e = Exporter()
    e.count("ops", "success")
    return e.render().decode()


COMPONENTS: dict[str, Callable[[], str]] = {
    "core": core_text,
    "reconciler": reconciler_text,
    "monitoring": monitoring_text,
}


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_every_component_exports_process_metrics(component: str) -> None:
    text = COMPONENTS[component]()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
        assert f"\n{name} " in text, f"{component} lacks {name}"


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_no_created_series(component: str) -> None:
    text = COMPONENTS[component]()
    assert "_created" not in text, component


def test_host_ratios_are_0_to_1_with_the_old_percent_names_kept(tmp_path: Path) -> None:
    by_name: dict[str, list[float]] = {}
    for s in SystemCollector(tmp_path).collect():
        by_name.setdefault(s.name, []).append(s.value)
    pairs = [
        ("atlas_system_cpu_ratio", "atlas_system_cpu_percent"),
        ("atlas_system_memory_used_ratio", "atlas_system_memory_used_percent"),
        ("atlas_system_swap_used_ratio", "atlas_system_swap_used_percent"),
        ("atlas_system_disk_used_ratio", "atlas_system_disk_used_percent"),
    ]
    for ratio, percent in pairs:
        assert ratio in by_name and percent in by_name, ratio
        for r, p in zip(by_name[ratio], by_name[percent], strict=True):
            assert 0.0 <= r <= 1.0
            assert r == pytest.approx(p / 100.0, abs=0.0006)  # psutil rounds to 0.1 %


def test_the_example_rules_use_the_new_names() -> None:
    from tests.support.examples import EXAMPLE

    text = "\n".join(p.read_text() for p in Path(EXAMPLE).rglob("*.yaml"))
    assert "_percent" not in text
