"""Alert channels: email, webhook (Alertmanager format) and Slack.

Each channel module owns its settings (``EmailSettings``, ``WebhookSettings``,
``SlackSettings``), how they are read from the config, and its ``Channel``; this
package holds what they share. A channel's ``send`` either returns (delivered) or
raises a ``DeliveryError`` — permanent when the receiver rejected the message,
temporary otherwise. Secrets are read from the environment mapping passed in (the
unit's EnvironmentFile); ``RedactingChannel`` (applied by
:func:`atlas.alerting.delivery.build_channel`) redacts every error leaving a
channel and cuts its cause off, so no secret can travel further in a message or a
traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from atlas.alerting.model import Notification
from atlas.alerting.redact import Redactor
from atlas.errors import (
    DeliveryError,
    PartialDelivery,
    PermanentDeliveryError,
    ProbeFailure,
    TemporaryDeliveryError,
)
from atlas.monitoring.http import Http

DEFAULT_CHANNEL_TIMEOUT_S = 10.0


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
        self.send_to(n, key, None)

    def send_to(self, n: Notification, key: str, recipients: tuple[str, ...] | None) -> None:
        """``send``, to ``recipients`` alone when the channel has recipients (email)."""
        send_to = getattr(self.inner, "send_to", None)
        try:
            if recipients is not None and send_to is not None:
                send_to(n, key, recipients)
            else:
                self.inner.send(n, key)
        except PartialDelivery as exc:
            replies = {r: (code, self._redact(text)) for r, (code, text) in exc.refused.items()}
            raise PartialDelivery(self._redact(exc.where), exc.accepted, replies) from None
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


def http_outcome(status: int, body: str, what: str) -> None:
    """Raise for a non-2xx answer: 408, 429 and 5xx are temporary, other codes permanent."""
    if 200 <= status < 300:
        return
    detail = " ".join(body.split())[:200]
    message = f"{what} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 425, 429) or status >= 500:
        raise TemporaryDeliveryError(message)
    raise PermanentDeliveryError(message)


class HttpChannel:
    """What the channels that POST to a receiver share: the HTTP seam, the environment
    their secrets come from, and the User-Agent they send."""

    def __init__(self, name: str, env: Mapping[str, str], http: Http, version: str | None) -> None:
        self.name = name
        self.env = env
        self.http = http
        self.user_agent = f"atlas-monitoring/{version or 'dev'}"


def post_json(
    http: Http, url: str, body: bytes, timeout_s: float, headers: Mapping[str, str], what: str
) -> None:
    """POST a JSON ``body``; a transport problem is temporary, the answer decides the rest."""
    try:
        r = http.post(
            url, body, timeout=timeout_s, headers={"Content-Type": "application/json", **headers}
        )
    except ProbeFailure as exc:
        raise TemporaryDeliveryError(f"{what}: {exc}") from exc
    http_outcome(r.status, r.text, what)
