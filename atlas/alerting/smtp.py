"""The SMTP seam: hand one message to a mail server.

``SmtplibSmtp`` speaks SMTP with smtplib: ``starttls`` (plain connection upgraded
with STARTTLS, which is then required), ``tls`` (implicit TLS, usually port 465)
or ``none``; it logs in when a username is set. Certificates are verified against
the system's CAs (``ssl.create_default_context``, which honours SSL_CERT_FILE)
unless the caller passes another ``ssl.SSLContext`` — tests do, to trust their own
self-signed CA.

smtplib errors are translated here: a 5xx reply to this message is a
``PermanentDeliveryError``; connection problems, timeouts, TLS failures and 4xx
replies are ``TemporaryDeliveryError``s, and so is a refused login: the message is
fine, the channel is misconfigured, and it should go out once that is fixed.
Recipients count one by one: when the server refuses some (and accepts others, or
refuses them with different kinds of codes) ``send`` raises ``PartialDelivery``
naming each, so the caller records them apart and retries only those refused for
now; ``recipients`` sends to those alone (the headers still name everyone).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Protocol

from atlas.errors import PartialDelivery, PermanentDeliveryError, TemporaryDeliveryError


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    timeout_s: float
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


class Smtp(Protocol):
    def send(
        self, message: EmailMessage, server: SmtpServer, recipients: tuple[str, ...] | None = None
    ) -> None: ...


def _context(server: SmtpServer) -> ssl.SSLContext:
    return server.tls_context or ssl.create_default_context()


class SmtplibSmtp:
    def send(
        self, message: EmailMessage, server: SmtpServer, recipients: tuple[str, ...] | None = None
    ) -> None:
        where = f"SMTP {server.host}:{server.port}"
        try:
            with _connect(server) as client:
                refused = _transact(client, message, server, where, recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code >= 500 for code, _ in exc.recipients.values()}
            if len(codes) > 1:  # some for now, some for good: each is recorded
                raise PartialDelivery(where, (), _replies(exc.recipients)) from exc
            raise _translated(exc, where) from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise _translated(exc, where) from exc
        if refused:
            wanted = recipients or _addresses(message)
            accepted = tuple(r for r in wanted if r not in refused)
            raise PartialDelivery(where, accepted, _replies(refused))


def _addresses(message: EmailMessage) -> tuple[str, ...]:
    from email.utils import getaddresses

    return tuple(a for _, a in getaddresses(message.get_all("To", [])) if a)


def _replies(refused: dict[str, tuple[int, bytes]]) -> dict[str, tuple[int, str]]:
    return {r: (code, _reply(reply)) for r, (code, reply) in refused.items()}


def _connect(server: SmtpServer) -> smtplib.SMTP:
    """Open the connection: implicit TLS for ``tls``, plain TCP otherwise."""
    if server.security == "tls":
        return smtplib.SMTP_SSL(
            server.host, server.port, timeout=server.timeout_s, context=_context(server)
        )
    return smtplib.SMTP(server.host, server.port, timeout=server.timeout_s)


def _transact(
    client: smtplib.SMTP,
    message: EmailMessage,
    server: SmtpServer,
    where: str,
    recipients: tuple[str, ...] | None,
) -> dict[str, tuple[int, bytes]]:
    """Greet, secure and authenticate as the server's settings ask, then send.

    Returns the recipients the server refused (smtplib raises when it refuses all).
    """
    client.ehlo()
    if server.security == "starttls":
        _starttls(client, server, where)
    if server.username:
        _login(client, server.username, server.password, where)
    return client.send_message(message, to_addrs=list(recipients) if recipients else None)


def _starttls(client: smtplib.SMTP, server: SmtpServer, where: str) -> None:
    if not client.has_extn("starttls"):
        raise TemporaryDeliveryError(
            f"{where} does not offer STARTTLS, which this channel requires"
        )
    client.starttls(context=_context(server))
    client.ehlo()


def _login(client: smtplib.SMTP, username: str, password: str | None, where: str) -> None:
    if password is None:
        raise TemporaryDeliveryError(f"{where}: a username is set but the password is not")
    client.login(username, password)


def _translated(exc: Exception, where: str) -> PermanentDeliveryError | TemporaryDeliveryError:
    """The platform's error for an smtplib, TLS or socket error: 5xx is permanent."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # The message is fine; the channel is misconfigured. Retried, so that the
        # notification still goes out once the secret is fixed.
        return TemporaryDeliveryError(
            f"{where} refused the login ({exc.smtp_code}): {_reply(exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        kind = TemporaryDeliveryError if all(c < 500 for c in codes) else PermanentDeliveryError
        return kind(f"{where} refused every recipient ({codes})")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentDeliveryError if exc.smtp_code >= 500 else TemporaryDeliveryError
        return kind(f"{where} answered {exc.smtp_code}: {_reply(exc.smtp_error)}")
    return TemporaryDeliveryError(f"{where}: {type(exc).__name__}: {exc}")


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:300]
