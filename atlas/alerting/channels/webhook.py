"""Webhook channel: POST the Alertmanager webhook JSON (version 4) to a URL.

Receivers written for Alertmanager work unchanged. Each POST carries an
``Idempotency-Key`` header (the outbox key), so a receiver can drop the rare
duplicate that at-least-once delivery may produce after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from atlas.alerting.channels import http_outcome, secret
from atlas.alerting.model import Notification, webhook_payload
from atlas.errors import ProbeFailure, TemporaryDeliveryError
from atlas.monitoring.http import Http
from atlas.monitoring.settings import ChannelSettings, WebhookSettings


class WebhookChannel:
    type = "webhook"

    def __init__(
        self,
        ch: ChannelSettings,
        s: WebhookSettings,
        env: Mapping[str, str],
        http: Http,
        version: str | None,
    ) -> None:
        self.name = ch.name
        self.s = s
        self.env = env
        self.http = http
        self.user_agent = f"atlas-monitoring/{version or 'dev'}"

    def url(self) -> str:
        return self.s.url or secret(self.env, self.s.url_env, "webhook URL")

    def send(self, n: Notification, key: str) -> None:
        body = json.dumps(webhook_payload(n, self.s.max_alerts)).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": self.user_agent,
        }
        try:
            r = self.http.post(self.url(), body, timeout=self.s.timeout_s, headers=headers)
        except ProbeFailure as exc:
            raise TemporaryDeliveryError(f"webhook: {exc}") from exc
        http_outcome(r.status, r.text, "webhook")
