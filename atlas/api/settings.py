"""Typed settings of ``atlas api``, built from its validated rendered config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.api.auth import TokenConfig
from atlas.config import BaseSettings, base_settings, load_config
from atlas.errors import ConfigError


@dataclass(frozen=True)
class TlsConfig:
    """The certificate and key: PEM in env variables (from secrets) or files on the host."""

    cert_env: str | None = None
    key_env: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class ApiSettings(BaseSettings):
    listen: str
    port: int
    page_size: int
    replicas: int
    maintenance_file: Path
    preview_port: int | None  # blueGreen: replica N also on 127.0.0.1:preview_port+N-1
    tokens: tuple[TokenConfig, ...] = ()
    protect_metrics: bool = False
    tls: TlsConfig | None = None

    def check_instance(self, instance: int | None) -> int:
        n = 1 if instance is None else instance
        # blueGreen runs the new replicas N+1..2N beside the old ones 1..N
        most = self.replicas * (2 if self.preview_port is not None else 1)
        if not 1 <= n <= most:
            raise ConfigError(
                f"{self.config_path}: --instance {n} is outside 1..{most} "
                f"(replicas {self.replicas}{', blueGreen' if most > self.replicas else ''})"
            )
        if self.preview_port is not None and self.preview_port + n - 1 > 65535:
            raise ConfigError(
                f"{self.config_path}: previewPort {self.preview_port} + {n - 1} (replica {n}) "
                "is beyond port 65535"
            )
        return n

    def preview(self, n: int) -> int | None:
        """The private port replica ``n`` answers on beside the shared one (blueGreen)."""
        return None if self.preview_port is None else self.preview_port + n - 1


def from_dict(data: dict[str, Any], path: Path) -> ApiSettings:
    return ApiSettings(
        **base_settings(data, path).base_fields(),
        listen=data["listen"],
        port=int(data["port"]),
        page_size=int(data["pageSize"]),
        replicas=int(data["replicas"]),
        maintenance_file=Path(data["maintenanceFile"]),
        preview_port=int(data["previewPort"]) if "previewPort" in data else None,
        tokens=tuple(
            TokenConfig(t["name"], tuple(t["scopes"]), t["env"])
            for t in data.get("auth", {}).get("tokens", [])
        ),
        protect_metrics=bool(data.get("auth", {}).get("protectMetrics", False)),
        tls=_tls(data.get("tls")),
    )


def _tls(data: dict[str, Any] | None) -> TlsConfig | None:
    if data is None:
        return None
    if "certEnv" in data:
        return TlsConfig(cert_env=data["certEnv"], key_env=data["keyEnv"])
    return TlsConfig(cert_file=Path(data["certFile"]), key_file=Path(data["keyFile"]))


def load(path: Path) -> ApiSettings:
    return from_dict(load_config(path, "api"), path)
