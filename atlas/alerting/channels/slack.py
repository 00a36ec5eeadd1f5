"""Slack channel: an incoming-webhook message with one coloured attachment.

The attachment is ``danger`` (red) while anything fires and ``good`` (green) when
all is resolved; its title comes from the subject template and its text from
``slack.j2`` (or the channel's ``text`` override). ``SlackSettings`` is a channel's
``slack`` block; the incoming-webhook URL comes from the variable ``urlEnv`` names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atlas.alerting.channels import DEFAULT_CHANNEL_TIMEOUT_S, HttpChannel, post_json, secret
from atlas.alerting.model import Notification
from atlas.alerting.templates import render_message
from atlas.monitoring.http import Http

COLOURS = {"firing": "danger", "resolved": "good"}


@dataclass(frozen=True)
class SlackSettings:
    url_env: str
    channel: str | None = None
    username: str | None = None
    timeout_s: float = DEFAULT_CHANNEL_TIMEOUT_S

    @property
    def secret_envs(self) -> tuple[str, ...]:
        return (self.url_env,) if self.url_env else ()


def slack_settings(block: Mapping[str, Any]) -> SlackSettings:
    """A validated ``slack`` block."""
    return SlackSettings(
        url_env=block["urlEnv"],
        channel=block.get("channel"),
        username=block.get("username"),
        timeout_s=float(block.get("timeoutSeconds", DEFAULT_CHANNEL_TIMEOUT_S)),
    )


def slack_payload(
    n: Notification, s: SlackSettings, overrides: Mapping[str, str]
) -> dict[str, Any]:
    title = render_message("subject", n, overrides, "slack").strip()
    text = render_message("slack", n, overrides).strip()
    body: dict[str, Any] = {
        "text": title,
        "attachments": [
            {
                "color": COLOURS[n.status],
                "title": title,
                "title_link": n.external_url,
                "text": text,
                "fallback": title,
                "mrkdwn_in": ["text"],
                "footer": f"Atlas {n.environment}",
                "ts": int(n.created_at),
            }
        ],
    }
    if s.channel:
        body["channel"] = s.channel
    if s.username:
        body["username"] = s.username
    return body


class SlackChannel(HttpChannel):
    type = "slack"

    def __init__(
        self,
        name: str,
        s: SlackSettings,
        templates: Mapping[str, str],
        env: Mapping[str, str],
        http: Http,
        version: str | None,
    ) -> None:
        super().__init__(name, env, http, version)
        self.s = s
        self.templates = dict(templates)

    def send(self, n: Notification, key: str) -> None:
        body = json.dumps(slack_payload(n, self.s, self.templates)).encode()
        url = secret(self.env, self.s.url_env, "Slack webhook URL")
        headers = {"User-Agent": self.user_agent}
        post_json(self.http, url, body, self.s.timeout_s, headers, "slack")
