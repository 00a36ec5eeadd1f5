"""Typed settings of ``atlas services run``, built from its validated rendered config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.config import BaseSettings, base_settings, load_config
from atlas.errors import ConfigError


@dataclass(frozen=True)
class BackupSettings:
    policy: str
    destination: Path
    keep_last: int
    max_age_s: float | None
    encrypt: bool
    encryption_key_env: str | None
    verify: bool
    full_every_s: float = 0.0
    drill_every_s: float | None = None


@dataclass(frozen=True)
class ServicesSettings(BaseSettings):
    backup: BackupSettings | None

    @property
    def core_config(self) -> Path:
        """The worker's config, rendered beside this one: its sources for DLQ retries."""
        return self.config_path.with_name("core.json")

    def backup_policy(self) -> BackupSettings:
        """The backup policy; ConfigError when none is configured."""
        if self.backup is None:
            raise ConfigError(f"{self.config_path}: backup: no BackupPolicy is configured")
        return self.backup


def from_dict(data: dict[str, Any], path: Path) -> ServicesSettings:
    b = data["backup"]
    return ServicesSettings(
        **base_settings(data, path).base_fields(),
        backup=None
        if b is None
        else BackupSettings(
            policy=b["policy"],
            destination=Path(b["destination"]),
            keep_last=int(b["keepLast"]),
            max_age_s=b["maxAgeSeconds"],
            encrypt=bool(b["encrypt"]),
            encryption_key_env=b["encryptionKeyEnv"],
            verify=bool(b["verify"]),
            full_every_s=float(b.get("fullEverySeconds", 0.0)),
            drill_every_s=b.get("drillEverySeconds"),
        ),
    )


def load(path: Path) -> ServicesSettings:
    return from_dict(load_config(path, "services"), path)
