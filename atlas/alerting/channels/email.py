"""Email channel: a multipart/alternative message (text and HTML) over SMTP.

The Message-ID is derived from the outbox key, so a mail system that sees the same
notification twice (at-least-once delivery after a crash) can tell.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate

from atlas.alerting.channels import secret
from atlas.alerting.model import Notification
from atlas.alerting.smtp import Smtp, SmtpServer
from atlas.alerting.templates import render_message
from atlas.monitoring.settings import ChannelSettings, EmailSettings


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
        ch: ChannelSettings,
        s: EmailSettings,
        env: Mapping[str, str],
        smtp: Smtp,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        self.name = ch.name
        self.s = s
        self.templates = dict(ch.templates)
        self.env = env
        self.smtp = smtp
        self.tls_context = tls_context

    def send(self, n: Notification, key: str) -> None:
        s = self.s
        password = secret(self.env, s.password_env, "SMTP password") if s.password_env else None
        server = SmtpServer(
            s.host, s.port, s.security, s.timeout_s, s.username, password, self.tls_context
        )
        self.smtp.send(email_message(n, s, self.templates, key), server)
