"""Which Atlas this process is: its version (the installed distribution's) and the
Python that runs it, for ``atlas --version``, every ``/healthz`` and the
``atlas_build_info{version,python}`` gauge every component exports, with the
``process_*`` metrics (``export_component_metrics``). No ``_created`` series: they
double every counter and histogram and tell nothing a restart's
``process_start_time_seconds`` does not."""

from __future__ import annotations

import platform
from functools import cache
from importlib import metadata

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, disable_created_metrics


@cache
def version() -> str:
    try:
        return metadata.version("atlas")
    except metadata.PackageNotFoundError:  # a checkout run without installing it
        return "0+unknown"


def python() -> str:
    return platform.python_version()


def export_build_info(registry: CollectorRegistry) -> None:
    """``atlas_build_info{version,python} 1`` in ``registry``."""
    gauge = Gauge(
        "atlas_build_info",
        "The Atlas version and Python this process runs (always 1)",
        ["version", "python"],
        registry=registry,
    )
    gauge.labels(version(), python()).set(1)


def export_component_metrics(registry: CollectorRegistry) -> None:
    """What every component's /metrics carries: build info and ``process_*``."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    export_build_info(registry)
    ProcessCollector(registry=registry)
