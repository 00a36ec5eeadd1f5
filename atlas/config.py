"""Read a rendered config file (DESIGN.md §1) and check it against its schema.

The reconciler renders ``<config>/<component>.json``; a service validates it at start
with the JSON Schemas in ``schemas/config/`` and exits 1 with a message naming the
file, the field and what was expected. Typed settings for each service are built
from the validated dict by that service's own module; the fields every config
starts with (``common.json``'s envelope) are read once, here, into ``BaseSettings``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from atlas.errors import ConfigError
from seams.resources import CONFIG_SCHEMA_DIR

COMPONENTS = ("api", "core", "services", "monitoring")


@cache
def _validator(component: str) -> Any:
    import jsonschema
    from referencing import Registry, Resource

    resources = []
    for path in sorted(CONFIG_SCHEMA_DIR.glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((path.name, Resource.from_contents(contents)))
    schema = json.loads((CONFIG_SCHEMA_DIR / f"{component}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=Registry().with_resources(resources))


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate_config(data: Any, component: str, source: str = "<config>") -> dict[str, Any]:
    """Return ``data`` if it is a valid config of ``component``; ConfigError otherwise."""
    if component not in COMPONENTS:
        raise ConfigError(f"unknown component {component!r}")
    errors = sorted(_validator(component).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{source}: {_where(e.absolute_path)}: {e.message}" for e in errors[:10]]
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines) + more)
    assert isinstance(data, dict)
    return data


def load_config(path: Path, component: str) -> dict[str, Any]:
    """Read and validate the rendered config of ``component`` at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    return validate_config(data, component, str(path))


@dataclass(frozen=True)
class BaseSettings:
    """What every service's settings start with; each service's settings extend it."""

    config_path: Path
    environment: str
    log_level: str
    data_dir: Path
    database: Path
    busy_timeout_s: float

    def base_fields(self) -> dict[str, Any]:
        """These fields by name, to build a service's settings from."""
        return {f.name: getattr(self, f.name) for f in fields(BaseSettings)}


def base_settings(data: Mapping[str, Any], path: Path) -> BaseSettings:
    """The common fields of a validated config read from ``path``."""
    return BaseSettings(
        config_path=path,
        environment=data["environment"],
        log_level=data["logLevel"],
        data_dir=Path(data["dataDir"]),
        database=Path(data["database"]["path"]),
        busy_timeout_s=float(data["database"]["busyTimeoutSeconds"]),
    )
