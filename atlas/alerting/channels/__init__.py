"""Alert channels: email, webhook (Alertmanager format) and Slack.

``build_channel`` turns a channel's settings into a ``Channel``: its ``send`` either
returns (delivered) or raises a ``DeliveryError`` — permanent when the receiver
rejected the message, temporary otherwise. Secrets are read from the environment
mapping passed in (the unit's EnvironmentFile), registered with the ``Redactor``,
and every error leaving a channel is redacted here, with its cause cut off, so no
secret can travel further in a message or a traceback.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Protocol

from atlas.alerting.model import Notification
from atlas.alerting.redact import Redactor
from atlas.alerting.smtp import Smtp
from atlas.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from atlas.monitoring.http import Http
from atlas.monitoring.settings import (
    ChannelSettings,
    EmailSettings,
    SlackSettings,
    WebhookSettings,
)


class Channel(Protocol):
    name: str
    type: str

    def send(self, n: Notification, key: str) -> None:
        """Deliver ``n``; ``key`` identifies this notification (idempotency key)."""
        ...


class RedactingChannel:
    """Wraps a channel: every error that leaves it is redacted and has no cause."""

    def __init__(self, inner: Channel, redact: Redactor) -> None:
        self.inner = inner
        self.name = inner.name
        self.type = inner.type
        self._redact = redact

    def send(self, n: Notification, key: str) -> None:
        try:
            self.inner.send(n, key)
        except PermanentDeliveryError as exc:
            raise PermanentDeliveryError(self._redact(str(exc))) from None
        except DeliveryError as exc:
            raise TemporaryDeliveryError(self._redact(str(exc))) from None
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop delivery
            raise TemporaryDeliveryError(
                self._redact(f"unexpected {type(exc).__name__}: {exc}")
            ) from None


def secret(env: Mapping[str, str], name: str | None, what: str) -> str:
    """The value of the environment variable ``name``; a temporary error if unset."""
    if not name:
        raise TemporaryDeliveryError(f"no {what} is configured")
    value = env.get(name)
    if not value:
        raise TemporaryDeliveryError(
            f"the {what} is not set: environment variable {name} is empty or missing "
            "(it comes from the unit's EnvironmentFile)"
        )
    return value


def build_channel(
    ch: ChannelSettings,
    env: Mapping[str, str],
    *,
    http: Http,
    smtp: Smtp,
    redactor: Redactor,
    version: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> Channel:
    """The channel for ``ch``, its secrets registered with ``redactor``."""
    s = ch.settings
    inner: Channel
    if isinstance(s, EmailSettings):
        from atlas.alerting.channels.email import EmailChannel

        if s.password_env and env.get(s.password_env):
            redactor.add(env[s.password_env], s.username)
        inner = EmailChannel(ch, s, env, smtp, tls_context)
    elif isinstance(s, WebhookSettings):
        from atlas.alerting.channels.webhook import WebhookChannel

        if s.url_env and env.get(s.url_env):
            redactor.add(env[s.url_env])
        inner = WebhookChannel(ch, s, env, http, version)
    else:
        assert isinstance(s, SlackSettings)
        from atlas.alerting.channels.slack import SlackChannel

        if env.get(s.url_env):
            redactor.add(env[s.url_env])
        inner = SlackChannel(ch, s, env, http, version)
    return RedactingChannel(inner, redactor)


def http_outcome(status: int, body: str, what: str) -> None:
    """Raise for a non-2xx answer: 408, 429 and 5xx are temporary, other codes permanent."""
    if 200 <= status < 300:
        return
    detail = " ".join(body.split())[:200]
    message = f"{what} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 425, 429) or status >= 500:
        raise TemporaryDeliveryError(message)
    raise PermanentDeliveryError(message)
