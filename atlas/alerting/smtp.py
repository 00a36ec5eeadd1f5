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
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Protocol

from atlas.errors import PermanentDeliveryError, TemporaryDeliveryError


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
    def send(self, message: EmailMessage, server: SmtpServer) -> None: ...


def _context(server: SmtpServer) -> ssl.SSLContext:
    return server.tls_context or ssl.create_default_context()


class SmtplibSmtp:
    def send(self, message: EmailMessage, server: SmtpServer) -> None:
        where = f"SMTP {server.host}:{server.port}"
        try:
            client: smtplib.SMTP
            if server.security == "tls":
                client = smtplib.SMTP_SSL(
                    server.host, server.port, timeout=server.timeout_s, context=_context(server)
                )
            else:
                client = smtplib.SMTP(server.host, server.port, timeout=server.timeout_s)
            with client:
                client.ehlo()
                if server.security == "starttls":
                    if not client.has_extn("starttls"):
                        raise TemporaryDeliveryError(
                            f"{where} does not offer STARTTLS, which this channel requires"
                        )
                    client.starttls(context=_context(server))
                    client.ehlo()
                if server.username:
                    if server.password is None:
                        raise TemporaryDeliveryError(
                            f"{where}: a username is set but the password is not"
                        )
                    client.login(server.username, server.password)
                refused = client.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            # The message is fine; the channel is misconfigured. Retried, so that the
            # notification still goes out once the secret is fixed.
            raise TemporaryDeliveryError(
                f"{where} refused the login ({exc.smtp_code}): {_reply(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            kind = TemporaryDeliveryError if all(c < 500 for c in codes) else PermanentDeliveryError
            raise kind(f"{where} refused every recipient ({codes})") from exc
        except smtplib.SMTPResponseException as exc:
            kind = PermanentDeliveryError if exc.smtp_code >= 500 else TemporaryDeliveryError
            raise kind(f"{where} answered {exc.smtp_code}: {_reply(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise TemporaryDeliveryError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise PermanentDeliveryError(
                f"{where} refused recipients: {', '.join(sorted(refused))}"
            )


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:300]
