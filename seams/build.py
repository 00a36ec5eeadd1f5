"""Which Atlas this process is: its version (the installed distribution's) and the
Python that runs it, for ``atlas --version``, every ``/healthz`` and the
``atlas_build_info{version,python}`` gauge every component exports, with the
``process_*`` metrics (``export_component_metrics``). No ``_created`` series: they
double every counter and histogram and tell nothing a restart's
``process_start_time_seconds`` does not."""

from __future__ import annotations

import hashlib
import platform
from functools import cache
from importlib import metadata
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, disable_created_metrics

from seams.resources import DATA_ROOT


@cache
def version() -> str:
    try:
        return metadata.version("atlas")
    except metadata.PackageNotFoundError:  # a checkout run without installing it
        return "0+unknown"


def code_digest() -> str:
    """A digest of the code and data this installation runs (the ``atlas``, ``seams``
    and ``reconciler`` packages, and the data files): it changes when the installation
    is upgraded or, in a checkout, edited, even if the version does not. Units that run
    this installation restart when it changes, so none keeps running stale code."""
    here = Path(__file__).resolve().parent.parent
    data = ("schemas", "systemd", "templates", "monitoring")  # what the services read
    roots = [here / "atlas", here / "seams", here / "reconciler", *(DATA_ROOT / d for d in data)]
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix != ".pyc" and "__pycache__" not in path.parts and path.is_file():
                h.update(str(path.relative_to(root)).encode() + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


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
