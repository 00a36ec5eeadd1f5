"""``atlas monitor``: the agent as a systemd ``Type=notify`` service.

Builds the agent's outside world from this process's: the environment (the
channels' secrets, from the unit's EnvironmentFile), sd_notify, systemctl for the
scope (which gets neither the secrets nor our NOTIFY_SOCKET); then runs the agent
until SIGTERM or SIGINT, re-reading rules and channels on SIGHUP.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

from atlas.agent.agent import Agent, AgentDeps
from atlas.agent.settings import Settings
from atlas.alerting.outbox import RetryPolicy
from atlas.logs import setup
from atlas.monitoring.units import SystemctlUnits
from seams.notify import Notifier
from seams.stopping import arm_deadline


def run(
    settings: Settings,
    config_path: Path,
    retry: RetryPolicy,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run the agent until it is told to stop."""
    environ = os.environ if env is None else env
    setup(settings.log_level, "monitoring")
    deps = AgentDeps(
        env=dict(environ),
        notifier=Notifier.from_environ(environ),
        units=SystemctlUnits(settings.scope, environ),
    )
    agent = Agent(settings, deps, config_path, retry, root)

    def stop(*_: object) -> None:
        agent.request_stop()
        arm_deadline()  # a scrape or a delivery in flight may not hold the stop up

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda *_: agent.request_reload())
    agent.run()
