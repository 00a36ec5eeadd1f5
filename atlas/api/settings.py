"""Typed settings of ``atlas api``, built from its validated rendered config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.config import BaseSettings, base_settings, load_config
from atlas.errors import ConfigError


@dataclass(frozen=True)
class ApiSettings(BaseSettings):
    listen: str
    port: int
    page_size: int
    replicas: int
    maintenance_file: Path

    def check_instance(self, instance: int | None) -> int:
        n = 1 if instance is None else instance
        if not 1 <= n <= self.replicas:
            raise ConfigError(
                f"{self.config_path}: --instance {n} is outside 1..replicas ({self.replicas})"
            )
        return n


def from_dict(data: dict[str, Any], path: Path) -> ApiSettings:
    return ApiSettings(
        **base_settings(data, path).base_fields(),
        listen=data["listen"],
        port=int(data["port"]),
        page_size=int(data["pageSize"]),
        replicas=int(data["replicas"]),
        maintenance_file=Path(data["maintenanceFile"]),
    )


def load(path: Path) -> ApiSettings:
    return from_dict(load_config(path, "api"), path)
