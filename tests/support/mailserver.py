"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, port 0, optionally with
STARTTLS or implicit TLS (a self-signed certificate made here with `cryptography`)
and a login."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Verification on, trusting only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_cert(folder: Path) -> Cert:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "atlas test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    out = Cert(folder / "smtp-cert.pem", folder / "smtp-key.pem")
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    tls: bool
    login: str | None


@dataclass
class _Handler:
    messages: list[Delivered] = field(default_factory=list)
    reject_with: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> SMTP reply to RCPT

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_with:
            return self.reject_with
        raw = envelope.original_content or envelope.content
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        login = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        self.messages.append(
            Delivered(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                msg,
                raw,
                server.transport.get_extra_info("ssl_object") is not None,
                login,
            )
        )
        return "250 OK"


class _Port0Controller(Controller):  # type: ignore[misc]
    """aiosmtpd's Controller, bound to port 0 and told afterwards which port it got."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MailServer:
    def __init__(
        self,
        *,
        security: str = "none",  # none | starttls | tls
        cert: Cert | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.handler = _Handler()
        kwargs: dict[str, Any] = {}
        if login is not None:
            user, password = login

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = (
                    isinstance(data, LoginPassword)
                    and data.login.decode() == user
                    and data.password.decode() == password
                )
                return AuthResult(success=ok, handled=False, auth_data=data)

            kwargs["authenticator"] = authenticator
            # with implicit TLS aiosmtpd does not see the session as TLS: it is, from byte one
            kwargs["auth_require_tls"] = security == "starttls"
        if security == "starttls":
            assert cert is not None
            kwargs["tls_context"] = cert.server_context()
            kwargs["require_starttls"] = True
        elif security == "tls":
            assert cert is not None
            kwargs["ssl_context"] = cert.server_context()
        self.controller = _Port0Controller(self.handler, hostname="127.0.0.1", port=0, **kwargs)
        self.controller.start()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def messages(self) -> list[Delivered]:
        return list(self.handler.messages)

    def close(self) -> None:
        self.controller.stop()
