"""Typed settings of the monitoring agent, built from the rendered ``monitoring.json``.

``load_settings`` validates the file against ``schemas/config/monitoring.json``
(:func:`atlas.config.load_config`) and then checks what a schema cannot: unique
component names here, and through :func:`atlas.alerting.settings.alerting_from_dict`
unique rule and channel names, rules naming existing channels, valid regular
expressions and Jinja2 templates. Any problem is a ``ConfigError`` naming the file
and the field.

Rules and channels form ``Alerting``, the part re-read on SIGHUP. Channel secrets
are never in the file: ``passwordEnv``/``urlEnv`` name environment variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from atlas.alerting.settings import Alerting, alerting_from_dict
from atlas.config import load_config, validate_config
from atlas.errors import ConfigError
from atlas.monitoring.component import Component


@dataclass(frozen=True)
class Settings:
    environment: str
    version: str | None
    log_level: str
    data_dir: Path
    database_path: Path
    busy_timeout_s: float
    listen: str
    port: int
    interval_s: float
    external_url: str
    scope: Literal["system", "user"]
    maintenance_file: Path
    components: tuple[Component, ...]
    alerting: Alerting
    source: str = "<config>"


def load_settings(path: Path, root: Path | None = None) -> Settings:
    """Read, validate and type ``path``. ``root`` prefixes the host paths inside it."""
    return settings_from_dict(load_config(path, "monitoring"), str(path), root)


def settings_from_dict(data: Any, source: str = "<config>", root: Path | None = None) -> Settings:
    """Validate a config dict (as rendered) and build typed settings."""
    data = validate_config(data, "monitoring", source)

    def host_path(p: str) -> Path:
        return root / p.lstrip("/") if root is not None and str(root) != "/" else Path(p)

    components = tuple(_component(c) for c in data["components"])
    seen: set[str] = set()
    for i, c in enumerate(components):
        if c.name in seen:
            raise ConfigError(f"{source}: components[{i}].name: duplicate component {c.name!r}")
        seen.add(c.name)
    data_dir = host_path(data["dataDir"])
    return Settings(
        environment=data["environment"],
        version=data["version"],
        log_level=data["logLevel"],
        data_dir=data_dir,
        database_path=host_path(data["database"]["path"]),
        busy_timeout_s=float(data["database"]["busyTimeoutSeconds"]),
        listen=data["listen"],
        port=int(data["port"]),
        interval_s=float(data["intervalSeconds"]),
        external_url=data["externalURL"].rstrip("/"),
        scope=data["scope"],
        maintenance_file=host_path(data["maintenanceFile"]),
        components=components,
        alerting=alerting_from_dict(data, source, data_dir),
        source=source,
    )


def _component(c: Mapping[str, Any]) -> Component:
    return Component(
        name=c["name"],
        component=c["component"],
        units=tuple(c["units"]),
        job=c["job"],
        health_url=c["healthURL"],
        metrics_url=c["metricsURL"],
        timeout_s=float(c["timeoutSeconds"]),
    )
