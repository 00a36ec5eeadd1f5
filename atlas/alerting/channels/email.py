"""Email channel: a multipart/alternative message (text and HTML) over SMTP.

``EmailSettings`` is a channel's ``email`` block (the password comes from the
environment variable ``passwordEnv`` names). The Message-ID is derived from the
outbox key, so a mail system that sees the same notification twice (at-least-once
delivery after a crash) can tell.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal

from atlas.alerting.channels import DEFAULT_CHANNEL_TIMEOUT_S, secret
from atlas.alerting.model import Notification
from atlas.alerting.smtp import Smtp, SmtpServer
from atlas.alerting.templates import render_message
from atlas.errors import ConfigError

EmailSecurity = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class EmailSettings:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    security: EmailSecurity = "starttls"
    username: str | None = None
    password_env: str | None = None
    timeout_s: float = DEFAULT_CHANNEL_TIMEOUT_S

    @property
    def secret_envs(self) -> tuple[str, ...]:
        return (self.password_env,) if self.password_env else ()


def email_settings(block: Mapping[str, Any], where: str) -> EmailSettings:
    """A validated ``email`` block; ``where`` names the channel in errors."""
    s = EmailSettings(
        host=block["host"],
        sender=block["from"],
        to=tuple(block["to"]),
        port=int(block.get("port", 587)),
        security=block.get("security", "starttls"),
        username=block.get("username"),
        password_env=block.get("passwordEnv"),
        timeout_s=float(block.get("timeoutSeconds", DEFAULT_CHANNEL_TIMEOUT_S)),
    )
    if not s.to:
        raise ConfigError(f"{where}.email.to: at least one recipient is needed")
    return s


def email_message(
    n: Notification, s: EmailSettings, overrides: Mapping[str, str], key: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = " ".join(render_message("subject", n, overrides).split())
    msg["From"] = s.sender
    msg["To"] = ", ".join(s.to)
    msg["Date"] = formatdate(n.created_at, usegmt=True)
    msg["Message-ID"] = f"<{key}@atlas-monitoring.invalid>"
    msg["X-Atlas-Status"] = n.status
    msg["X-Atlas-Alertname"] = n.rule
    msg["X-Atlas-Environment"] = n.environment
    msg.set_content(render_message("text", n, overrides))
    msg.add_alternative(render_message("html", n, overrides), subtype="html")
    return msg


class EmailChannel:
    type = "email"

    def __init__(
        self,
        name: str,
        s: EmailSettings,
        templates: Mapping[str, str],
        env: Mapping[str, str],
        smtp: Smtp,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        self.name = name
        self.s = s
        self.templates = dict(templates)
        self.env = env
        self.smtp = smtp
        self.tls_context = tls_context

    def send(self, n: Notification, key: str) -> None:
        self.send_to(n, key, None)

    def send_to(self, n: Notification, key: str, recipients: tuple[str, ...] | None) -> None:
        """Send to ``recipients`` only (those still owed the message), or to all."""
        s = self.s
        password = secret(self.env, s.password_env, "SMTP password") if s.password_env else None
        server = SmtpServer(
            s.host, s.port, s.security, s.timeout_s, s.username, password, self.tls_context
        )
        self.smtp.send(email_message(n, s, self.templates, key), server, recipients)
