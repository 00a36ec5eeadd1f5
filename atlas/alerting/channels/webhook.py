"""Webhook channel: POST the Alertmanager webhook JSON (version 4) to a URL.

``WebhookSettings`` is a channel's ``webhook`` block. Receivers written for
Alertmanager work unchanged. Each POST carries an ``Idempotency-Key`` header (the
outbox key), so a receiver can drop the rare duplicate that at-least-once delivery
may produce after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atlas.alerting.channels import DEFAULT_CHANNEL_TIMEOUT_S, HttpChannel, post_json, secret
from atlas.alerting.model import Notification, webhook_payload
from atlas.errors import ConfigError
from atlas.monitoring.http import Http


@dataclass(frozen=True)
class WebhookSettings:
    url: str | None = None
    url_env: str | None = None
    timeout_s: float = DEFAULT_CHANNEL_TIMEOUT_S
    max_alerts: int = 0  # 0: all

    @property
    def secret_envs(self) -> tuple[str, ...]:
        return (self.url_env,) if self.url_env else ()


def webhook_settings(block: Mapping[str, Any], where: str) -> WebhookSettings:
    """A validated ``webhook`` block: the URL itself or the variable holding it."""
    if bool(block.get("url")) == bool(block.get("urlEnv")):
        raise ConfigError(f"{where}.webhook: exactly one of url and urlEnv is needed")
    return WebhookSettings(
        url=block.get("url"),
        url_env=block.get("urlEnv"),
        timeout_s=float(block.get("timeoutSeconds", DEFAULT_CHANNEL_TIMEOUT_S)),
        max_alerts=int(block.get("maxAlerts", 0)),
    )


class WebhookChannel(HttpChannel):
    type = "webhook"

    def __init__(
        self, name: str, s: WebhookSettings, env: Mapping[str, str], http: Http, version: str | None
    ) -> None:
        super().__init__(name, env, http, version)
        self.s = s

    def url(self) -> str:
        return self.s.url or secret(self.env, self.s.url_env, "webhook URL")

    def send(self, n: Notification, key: str) -> None:
        body = json.dumps(webhook_payload(n, self.s.max_alerts)).encode()
        headers = {"Idempotency-Key": key, "User-Agent": self.user_agent}
        post_json(self.http, self.url(), body, self.s.timeout_s, headers, "webhook")
