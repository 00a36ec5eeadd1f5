"""What every part of rendering reads: the desired state, the host, and the paths
derived from both (where each component's config and env file go, the database)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath

from reconciler import model
from reconciler.host.paths import HostLayout
from reconciler.render.desired import RenderContext


@dataclass(frozen=True)
class Inputs:
    desired: model.DesiredState
    ctx: RenderContext

    @property
    def settings(self) -> model.Settings:
        return self.desired.settings

    @property
    def layout(self) -> HostLayout:
        return self.ctx.layout

    @cached_property
    def database(self) -> PurePosixPath:
        """The content database: a relative ``database.path`` lives in the data folder."""
        path = PurePosixPath(self.settings.database_path)
        return path if path.is_absolute() else self.layout.data_dir / path

    def config_path(self, component: str) -> PurePosixPath:
        return self.layout.config_dir / f"{component}.json"

    def env_path(self, component: str) -> PurePosixPath:
        return self.layout.config_dir / f"{component}.env"

    @property
    def maintenance_file(self) -> PurePosixPath:
        return self.layout.data_dir / "maintenance.json"

    @property
    def wanted_by(self) -> str:
        return "multi-user.target" if self.layout.scope == "system" else "default.target"

    @property
    def network_after(self) -> list[str]:
        return ["network-online.target"] if self.layout.scope == "system" else []
