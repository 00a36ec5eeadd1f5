"""Notifications: the channel-independent message built from a group of alerts.

A ``Notification`` is what the outbox stores (as JSON) and what each channel turns
into its own format; ``webhook_payload`` is the Alertmanager webhook format,
version 4. Pure, and independent of the rule engine and the config:
:mod:`atlas.alerting.routing` builds notifications from the engine's groups.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["firing", "resolved"]
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt of a firing alert
TEST_ALERTNAME = "AtlasTestNotification"


def rfc3339(ts: float | None) -> str:
    """An RFC 3339 UTC timestamp with milliseconds; None → Go's zero time."""
    if ts is None:
        return GO_ZERO_TIME
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AlertPayload:
    status: Status
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    fingerprint: str
    value: float | None
    generator_url: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class Notification:
    receiver: str  # the channel's name
    rule: str
    status: Status
    group_key: str
    group_labels: dict[str, str]
    alerts: tuple[AlertPayload, ...]
    external_url: str
    environment: str
    created_at: float
    test: bool = False
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def firing(self) -> list[AlertPayload]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[AlertPayload]:
        return [a for a in self.alerts if a.status == "resolved"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Notification:
        data = json.loads(text)
        data["alerts"] = tuple(AlertPayload(**a) for a in data["alerts"])
        return cls(**data)


def common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The key/value pairs every map has (Alertmanager's commonLabels)."""
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def group_key(channel: str, rule: str) -> str:
    return f'{{}}/{{receiver="{channel}"}}:{{alertname="{rule}"}}'


def build(
    channel: str,
    rule: str,
    alerts: Sequence[AlertPayload],
    *,
    external_url: str,
    environment: str,
    now: float,
    test: bool = False,
) -> Notification:
    status: Status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return Notification(
        receiver=channel,
        rule=rule,
        status=status,
        group_key=group_key(channel, rule),
        group_labels={"alertname": rule},
        alerts=tuple(alerts),
        external_url=external_url,
        environment=environment,
        created_at=now,
        test=test,
        common_labels=common([a.labels for a in alerts]),
        common_annotations=common([a.annotations for a in alerts]),
    )


def test_notification(
    channel: str, external_url: str, environment: str, now: float
) -> Notification:
    """What ``atlas alerts test CHANNEL`` sends: one firing alert of severity info."""
    labels = {"alertname": TEST_ALERTNAME, "severity": "info", "environment": environment}
    alert = AlertPayload(
        status="firing",
        labels=labels,
        annotations={
            "summary": "Test notification from the Atlas monitoring agent",
            "description": f"Sent by `atlas alerts test {channel}`; no action is needed.",
        },
        starts_at=now,
        ends_at=None,
        fingerprint="0" * 16,
        value=None,
        generator_url=external_url,
    )
    return build(
        channel,
        TEST_ALERTNAME,
        [alert],
        external_url=external_url,
        environment=environment,
        now=now,
        test=True,
    )


def webhook_payload(n: Notification, max_alerts: int = 0) -> dict[str, Any]:
    """The Alertmanager webhook body (version "4"); ``max_alerts`` > 0 truncates."""
    alerts = list(n.alerts)
    truncated = 0
    if max_alerts > 0 and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": truncated,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": dict(n.group_labels),
        "commonLabels": dict(n.common_labels),
        "commonAnnotations": dict(n.common_annotations),
        "externalURL": n.external_url,
        "alerts": [
            {
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": rfc3339(a.starts_at),
                "endsAt": rfc3339(a.ends_at),
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
    }
