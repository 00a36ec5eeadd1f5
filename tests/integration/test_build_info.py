"""Every component says which Atlas it runs: /healthz carries ``version`` and /metrics
``atlas_build_info{version,python} 1``."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from atlas.core.metrics import CoreMetrics
from atlas.monitoring.exporter import Exporter
from reconciler.metrics import ReconcilerMetrics
from seams import build
from tests.support.api import Api

VERSION = metadata.version("atlas")
SAMPLE = f'atlas_build_info{{python="{platform.python_version()}",version="{VERSION}"}} 1.0'


def test_the_version_is_the_installed_distributions() -> None:
    assert build.version() == VERSION != "0+unknown"


@pytest.mark.parametrize(
    "registry",
    [
        lambda: CoreMetrics().registry,
        lambda: Exporter().registry,
        lambda: ReconcilerMetrics().registry,
    ],
    ids=["core", "monitoring", "reconciler"],
)
def test_each_component_exports_its_build(registry) -> None:
    assert SAMPLE in generate_latest(registry()).decode()


def test_the_api_names_its_version_in_healthz_and_metrics(tmp_path: Path) -> None:
    api = Api(tmp_path)
    try:
        assert api.get("/healthz").json() == {"status": "ok", "version": VERSION}
        assert SAMPLE in api.get("/metrics").text
    finally:
        api.close()


def test_the_sync_status_is_there_from_the_first_scrape() -> None:
    """Unknown until a cycle ends, then replaced (never two sync_info series)."""
    from reconciler.outcomes import SyncStatus

    m = ReconcilerMetrics()
    text = generate_latest(m.registry).decode()
    assert 'atlas_sync_info{applied_revision="",desired_revision="",status="Unknown"} 1.0' in text
    m.set_sync("abc", "abc", SyncStatus.SYNCED)
    text = generate_latest(m.registry).decode()
    assert "Unknown" not in text
    assert text.count("atlas_sync_info{") == 1
