"""What the agent watches: an Atlas component, its systemd units and its endpoints.

Built from the config's ``components`` by :mod:`atlas.agent.settings`; the
collectors (``health``, ``scrape``, ``collect``) probe what it names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    name: str
    component: str
    units: tuple[str, ...]
    job: str | None
    health_url: str | None
    metrics_url: str | None
    timeout_s: float
