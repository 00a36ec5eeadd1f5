"""Routing: which notifications one evaluation's ``Group`` of alerts makes.

``notifications_for`` (pure) fans a rule's group out to the rule's channels, one
``Notification`` each, dropping resolved alerts for channels that do not want them
(``sendResolved: false``) and naming the channels the config no longer has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from atlas.alerting.model import AlertPayload, Notification, build
from atlas.alerting.settings import ChannelSettings
from atlas.monitoring.rules import Group


def notifications_for(
    group: Group,
    rule_channels: Sequence[str],
    channels: Mapping[str, ChannelSettings],
    *,
    external_url: str,
    environment: str,
) -> tuple[list[Notification], list[str]]:
    """One notification per channel of the rule, and the channel names that are unknown."""
    payloads = [
        AlertPayload(
            status=g.status,
            labels=dict(g.alert.labels),
            annotations=dict(g.alert.annotations),
            starts_at=g.alert.fired_at if g.alert.fired_at is not None else g.alert.active_at,
            ends_at=g.ends_at if g.status == "resolved" else None,
            fingerprint=g.alert.fingerprint,
            value=g.alert.value,
            generator_url=external_url,
        )
        for g in group.alerts
    ]
    out, unknown = [], []
    for name in rule_channels:
        ch = channels.get(name)
        if ch is None:
            unknown.append(name)
            continue
        chosen = payloads if ch.send_resolved else [p for p in payloads if p.status == "firing"]
        if chosen:
            out.append(
                build(
                    name,
                    group.rule,
                    chosen,
                    external_url=external_url,
                    environment=environment,
                    now=group.at,
                )
            )
    return out, unknown
