"""Where Atlas puts things on a host (DESIGN.md §4), for a scope and a --root prefix.

Paths inside rendered files are host paths (as systemd and the services see them);
``HostLayout.on_disk`` adds the ``--root`` prefix to find the same file from here.
The environment variables are read by the caller and passed in: nothing here
reads ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

Scope = Literal["system", "user"]


@dataclass(frozen=True)
class HostLayout:
    scope: Scope
    root: Path
    unit_dir: PurePosixPath
    config_dir: PurePosixPath
    state_dir: PurePosixPath

    @property
    def data_dir(self) -> PurePosixPath:
        """Platform data (databases, backups): writable by the services."""
        return self.state_dir / "data"

    @property
    def reconciler_dir(self) -> PurePosixPath:
        """The reconciler's own state: state DB, lock, git cache."""
        return self.state_dir / "reconciler"

    @property
    def releases_dir(self) -> PurePosixPath:
        """Installed Atlas releases, one venv per version (``host.releases``)."""
        return self.state_dir / "releases"

    def on_disk(self, path: PurePosixPath | str) -> Path:
        """The file as seen from this process: ``root`` + host path."""
        p = PurePosixPath(path)
        return self.root / p.relative_to("/") if p.is_absolute() else self.root / p

    def as_dict(self) -> dict[str, str]:
        return {
            "scope": self.scope,
            "root": str(self.root),
            "unit_dir": str(self.unit_dir),
            "config_dir": str(self.config_dir),
            "state_dir": str(self.state_dir),
        }


def host_layout(scope: Scope, root: Path | str, env: Mapping[str, str]) -> HostLayout:
    """The layout for ``scope``; ``env`` supplies HOME and the XDG variables for user scope."""
    if scope == "system":
        return HostLayout(
            scope="system",
            root=Path(root),
            unit_dir=PurePosixPath("/etc/systemd/system"),
            config_dir=PurePosixPath("/etc/atlas"),
            state_dir=PurePosixPath("/var/lib/atlas"),
        )
    home = PurePosixPath(env.get("HOME") or "/root")
    config_home = PurePosixPath(env.get("XDG_CONFIG_HOME") or home / ".config")
    state_home = PurePosixPath(env.get("XDG_STATE_HOME") or home / ".local/state")
    return HostLayout(
        scope="user",
        root=Path(root),
        unit_dir=config_home / "systemd/user",
        config_dir=config_home / "atlas",
        state_dir=state_home / "atlas",
    )
