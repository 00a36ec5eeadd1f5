"""The alerting part of the agent's config: rules and channels (``Alerting``).

``alerting_from_dict`` reads them from a config already validated against
``schemas/config/monitoring.json`` and checks what a schema cannot: unique rule
and channel names, rules naming existing channels, valid regular expressions and
Jinja2 templates. Any problem is a ``ConfigError`` naming the file and the field.
Each channel module reads its own block (``email_settings``, ``webhook_settings``,
``slack_settings``, ``log_settings``).

``Alerting`` is the part of the config the agent re-reads on SIGHUP. Channel
secrets are never in the file: ``passwordEnv``/``urlEnv`` name environment
variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from atlas.alerting.channels.email import EmailSettings, email_settings
from atlas.alerting.channels.log import LogSettings, log_settings
from atlas.alerting.channels.slack import SlackSettings, slack_settings
from atlas.alerting.channels.webhook import WebhookSettings, webhook_settings
from atlas.alerting.templates import check_annotation, check_channel_templates
from atlas.errors import ConfigError
from atlas.monitoring.rules import Rule
from atlas.monitoring.samples import Matcher, Selector

ChannelType = Literal["email", "webhook", "slack", "log"]
ChannelSpecific = EmailSettings | WebhookSettings | SlackSettings | LogSettings
CHANNEL_TYPES = ("email", "webhook", "slack", "log")


@dataclass(frozen=True)
class ChannelSettings:
    name: str
    type: ChannelType
    send_resolved: bool
    settings: ChannelSpecific
    templates: dict[str, str] = field(default_factory=dict)

    @property
    def secret_envs(self) -> tuple[str, ...]:
        """Names of the environment variables holding this channel's secrets."""
        return self.settings.secret_envs


@dataclass(frozen=True)
class Alerting:
    """The part of the config that SIGHUP re-reads."""

    rules: tuple[Rule, ...]
    channels: tuple[ChannelSettings, ...]

    def channel(self, name: str) -> ChannelSettings | None:
        return next((c for c in self.channels if c.name == name), None)


def alerting_from_dict(
    data: Mapping[str, Any], source: str, data_dir: Path | None = None
) -> Alerting:
    """Rules and channels of a validated config, with the cross-checks a schema cannot do;
    a log channel's file is in ``data_dir`` (default: the config's ``dataDir``)."""
    folder = data_dir if data_dir is not None else Path(data.get("dataDir", "."))
    channels: list[ChannelSettings] = []
    for i, raw in enumerate(data["channels"]):
        where = f"{source}: channels[{i}]"
        ch = _channel(raw, where, folder)
        if any(c.name == ch.name for c in channels):
            raise ConfigError(f"{where}.name: duplicate channel {ch.name!r}")
        check_channel_templates(ch.name, ch.type, ch.templates, where)
        channels.append(ch)
    names = {c.name for c in channels}
    rules: list[Rule] = []
    for i, raw in enumerate(data["rules"]):
        where = f"{source}: rules[{i}] ({raw['name']})"
        rule = _rule(raw, where)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(f"{where}.name: duplicate rule {rule.name!r}")
        for ch_name in rule.channels:
            if ch_name not in names:
                raise ConfigError(
                    f"{where}.channels: no channel named {ch_name!r} "
                    f"(channels: {', '.join(sorted(names)) or 'none'})"
                )
        for key, text in rule.annotations.items():
            check_annotation(text, f"{where}.annotations.{key}")
        rules.append(rule)
    return Alerting(tuple(rules), tuple(channels))


def _rule(r: Mapping[str, Any], where: str) -> Rule:
    matchers = []
    for j, m in enumerate(r["matchers"]):
        try:
            matchers.append(Matcher.make(m["label"], m["op"], m["value"]))
        except re.error as exc:
            raise ConfigError(
                f"{where}.matchers[{j}]: {m['value']!r} is not a valid regular expression: {exc}"
            ) from exc
    return Rule(
        name=r["name"],
        selector=Selector(r["metric"], tuple(matchers)),
        op=r["op"],
        threshold=float(r["threshold"]),
        for_s=float(r["forSeconds"]),
        keep_firing_for_s=float(r["keepFiringForSeconds"]),
        repeat_interval_s=float(r["repeatIntervalSeconds"]),
        severity=r["severity"],
        channels=tuple(r["channels"]),
        labels=dict(r["labels"]),
        annotations=dict(r["annotations"]),
    )


def _channel(c: Mapping[str, Any], where: str, data_dir: Path) -> ChannelSettings:
    kind: ChannelType = c["type"]
    block = c.get(kind, {} if kind == "log" else None)  # a log channel has only defaults
    if block is None:
        raise ConfigError(f"{where}: a {kind} channel needs a {kind!r} block")
    others = [k for k in CHANNEL_TYPES if k != kind and k in c]
    if others:
        raise ConfigError(f"{where}: a {kind} channel cannot have a {others[0]!r} block")
    specific: ChannelSpecific
    if kind == "email":
        specific = email_settings(block, where)
    elif kind == "webhook":
        specific = webhook_settings(block, where)
    elif kind == "log":
        specific = log_settings(block, where, data_dir)
    else:
        specific = slack_settings(block)
    unknown = set(c["templates"]) - {"subject", "text", "html"}
    if unknown:
        raise ConfigError(
            f"{where}.templates: unknown template {sorted(unknown)[0]!r} "
            "(expected subject, text or html)"
        )
    if kind == "log" and set(c["templates"]) - {"subject"}:
        raise ConfigError(
            f"{where}.templates: a log channel uses only the subject template (its MESSAGE), "
            f"not {sorted(set(c['templates']) - {'subject'})[0]!r}"
        )
    return ChannelSettings(c["name"], kind, bool(c["sendResolved"]), specific, dict(c["templates"]))
