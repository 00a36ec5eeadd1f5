"""Jinja2 for what alerts *say*: rule annotations and channel messages.

Annotations (``summary: "Disk {{ labels.mount }} is {{ value | round(1) }}% full"``)
see ``labels`` (a dict) and ``value`` (a number); a missing label renders empty and
a failing template renders ``(template error: …)`` rather than losing the alert.

Messages come from ``templates/alerts/`` (``email-subject.j2`` — also the Slack
title —, ``email.txt.j2``, ``email.html.j2``, ``slack.j2``); a channel's
``templates`` map overrides ``subject``, ``text`` (email text part, Slack text) and
``html``. Overrides are compiled and rendered against a sample notification when
the config is loaded, so a typo is a ConfigError at start or reload, not a lost
alert; should one still fail at send time, the default template is used instead.

Message template context: ``status``, ``rule``, ``receiver``, ``environment``,
``test``, ``externalURL``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``
and ``alerts`` / ``firing`` / ``resolved``: lists of dicts with ``status``,
``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``value`` (text or None),
``fingerprint`` and ``generatorURL``. Everything renders in a sandbox, with
StrictUndefined: write ``a.annotations.get("runbook_url")`` for what a rule may
not set.

The sandbox is bounded (``seams.templating``: ranges, powers, repetitions, widths,
output size and a time budget, ``ANNOTATION_LIMITS`` and ``MESSAGE_LIMITS``) and
``atlas validate`` checks every template the same way at plan time. A render over
its limits is logged as an error and gives a fallback: ``(template error: …)`` for
an annotation, the default template for a channel's override, a one-line summary
for a default template.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

import jinja2

from atlas.alerting.model import AlertPayload, Notification, build, rfc3339
from atlas.errors import ConfigError
from atlas.monitoring.rules import Rule
from seams import templating
from seams.resources import ALERT_TEMPLATE_DIR

TEMPLATE_DIR = ALERT_TEMPLATE_DIR
DEFAULTS = {
    "subject": "email-subject.j2",
    "text": "email.txt.j2",
    "html": "email.html.j2",
    "slack": "slack.j2",
}
log = logging.getLogger(__name__)
ANNOTATION_LIMITS = templating.ANNOTATION_LIMITS
MESSAGE_LIMITS = templating.MESSAGE_LIMITS


def format_value(value: float | None) -> str | None:
    """A sample value as people read it: 3 rather than 3.0, 93.25 rather than 93.250000."""
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


class _Value(float):
    """A float that prints like ``format_value`` inside annotation templates."""

    def __str__(self) -> str:
        return format_value(float(self)) or ""


def _annotation_env() -> templating.Bounded:
    return templating.annotation_env()


def slack_escape(text: str) -> str:
    """Text as Slack must receive it: ``&``, ``<`` and ``>`` as entities, so that a
    value reading ``<!channel>`` or ``<@U1>`` pings no one and links nowhere."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_finalize(value: Any) -> str:
    return slack_escape(str(value))


Format = Literal["plain", "html", "slack"]


@cache
def _message_env(fmt: Format) -> templating.Bounded:
    """Templates for one format, bounded. Every ``{{ value }}`` is escaped for it (HTML
    by autoescape, Slack by ``finalize``); the template's own text is its markup."""
    return templating.message_env(fmt == "html", _slack_finalize if fmt == "slack" else None)


def _format(kind: str, channel_type: str) -> Format:
    if kind == "html":
        return "html"
    return "slack" if channel_type == "slack" else "plain"


@cache
def _compiled_annotation(text: str) -> jinja2.Template:
    return _annotation_env().from_string(text)


def check_annotation(text: str, where: str) -> None:
    """ConfigError when ``text`` is not a valid annotation template (syntax, names,
    limits of a trial render)."""
    bad = templating.annotation_problem(text)
    if bad:
        raise ConfigError(f"{where}: {bad}")


def render_annotations(rule: Rule, labels: Mapping[str, str], value: float) -> dict[str, str]:
    """The rule's annotations rendered for one alert (the engine's ``Annotator``)."""
    out = {}
    for key, text in rule.annotations.items():
        if "{" not in text:
            out[key] = text
            continue
        context = {"labels": dict(labels), "value": _Value(value)}
        try:
            out[key] = templating.render(_compiled_annotation(text), context, ANNOTATION_LIMITS)
        except templating.RenderLimit as exc:
            log.error("rule %s: annotation %s went over its limits: %s", rule.name, key, exc)
            out[key] = f"(template error: {exc})"
        except Exception as exc:  # noqa: BLE001 - a bad template must not lose the alert
            out[key] = f"(template error: {exc})"
    return out


def _context(n: Notification) -> dict[str, Any]:
    def alert(a: AlertPayload) -> dict[str, Any]:
        return {
            "status": a.status,
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "startsAt": rfc3339(a.starts_at),
            "endsAt": rfc3339(a.ends_at) if a.ends_at is not None else "",
            "value": format_value(a.value),
            "fingerprint": a.fingerprint,
            "generatorURL": a.generator_url,
        }

    alerts = [alert(a) for a in n.alerts]
    return {
        "status": n.status,
        "rule": n.rule,
        "receiver": n.receiver,
        "environment": n.environment,
        "test": n.test,
        "externalURL": n.external_url,
        "groupLabels": dict(n.group_labels),
        "commonLabels": dict(n.common_labels),
        "commonAnnotations": dict(n.common_annotations),
        "alerts": alerts,
        "firing": [a for a in alerts if a["status"] == "firing"],
        "resolved": [a for a in alerts if a["status"] == "resolved"],
    }


def _default(kind: str, fmt: Format) -> jinja2.Template:
    return _message_env(fmt).get_template(DEFAULTS[kind])


def _override(fmt: Format, text: str) -> jinja2.Template:
    return _message_env(fmt).from_string(text)


def render_message(
    kind: str, n: Notification, overrides: Mapping[str, str], channel_type: str = "email"
) -> str:
    """Render ``kind`` (subject, text, html, slack) for ``n`` as ``channel_type``
    reads it (a Slack subject is escaped for Slack); overrides by channel."""
    key = "text" if kind == "slack" else kind
    fmt = _format(kind, "slack" if kind == "slack" else channel_type)
    ctx = _context(n)
    text = overrides.get(key)
    if text is not None:
        try:
            return templating.render(_override(fmt, text), ctx, MESSAGE_LIMITS)
        except jinja2.TemplateError as exc:
            level = logging.ERROR if isinstance(exc, templating.RenderLimit) else logging.WARNING
            log.log(level, "channel %s: template %r failed (%s); using the default",
                    n.receiver, key, exc)  # fmt: skip
    try:
        out = templating.render(_default(kind, fmt), ctx, MESSAGE_LIMITS)
    except templating.RenderLimit as exc:
        log.error("channel %s: the default %s template went over its limits: %s",
                  n.receiver, kind, exc)  # fmt: skip
        out = f"{n.status}: {n.rule} ({len(n.alerts)} alerts; message too large to render)"
    return " ".join(out.split()) if kind == "subject" else out


def check_channel_templates(
    name: str, channel_type: str, templates: Mapping[str, str], where: str
) -> None:
    """Compile and trial-render a channel's overrides; ConfigError on any problem."""
    if not templates:
        return
    alerts = [
        AlertPayload("firing", {"alertname": "r", "severity": "warning"}, {"summary": "s"},
                     0.0, None, "0" * 16, 1.0, "http://atlas.invalid"),
        AlertPayload("resolved", {"alertname": "r", "severity": "warning"}, {"summary": "s"},
                     0.0, 60.0, "1" * 16, 0.0, "http://atlas.invalid"),
    ]  # fmt: skip
    sample = build(name, "r", alerts, external_url="http://atlas.invalid", environment="e", now=0)
    kinds = {
        "subject": "subject",
        "text": "slack" if channel_type == "slack" else "text",
        "html": "html",
    }
    context = _context(sample)
    for key, text in templates.items():
        env = _message_env(_format(kinds[key], channel_type))
        bad = templating.problems(env, text, templating.MESSAGE_NAMES, context, MESSAGE_LIMITS)
        if bad:
            raise ConfigError(f"{where}.templates.{key}: {bad}")
        try:
            templating.render(
                _override(_format(kinds[key], channel_type), text), context, MESSAGE_LIMITS
            )
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{where}.templates.{key}: {exc}") from exc
