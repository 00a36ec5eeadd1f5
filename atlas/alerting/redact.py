"""Keep secret values out of anything that is shown or stored.

A ``Redactor`` knows the secret values of the channels (an SMTP password, a webhook
URL read from the environment) and replaces each, and the forms it may take in an
error message (URL-quoted, the path and query of a secret URL, the base64 of an
SMTP ``AUTH PLAIN``), with ``<redacted>``. ``protect_logs`` applies it to every log
record and silences the HTTP libraries' request logging (which names URLs).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from urllib.parse import quote, urlsplit

MASK = "<redacted>"
_MIN_LEN = 4  # shorter "secrets" would redact ordinary words


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: set[str] = set()
        for s in secrets:
            self.add(s)

    def add(self, secret: str, username: str | None = None) -> None:
        if not secret or len(secret) < _MIN_LEN:
            if secret:
                self._needles.add(secret)
            return
        forms = {secret, quote(secret, safe=""), quote(secret, safe="/:")}
        if "://" in secret:
            parts = urlsplit(secret)
            tail = parts.path + (f"?{parts.query}" if parts.query else "")
            if len(tail) >= 8:
                forms.add(tail)
            if parts.query and len(parts.query) >= _MIN_LEN:
                forms.add(parts.query)
            if parts.password:
                forms.add(parts.password)
        if username is not None:
            plain = f"\0{username}\0{secret}".encode()
            forms.add(base64.b64encode(plain).decode())
        self._needles |= {f for f in forms if f}

    def __call__(self, text: str) -> str:
        for needle in sorted(self._needles, key=len, reverse=True):
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._needles)


class RedactingFilter(logging.Filter):
    """Rewrites every record passing a handler through the redactor."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("atlas-redact")
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redact:
            message = record.getMessage()
            cleaned = self.redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
        return True


def protect_logs(redact: Redactor) -> Callable[[], None]:
    """Keep secrets out of the logs: httpx and httpcore (which log request URLs) are
    held at WARNING, and every root handler redacts. Returns an undo function."""
    quiet = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(max(q.getEffectiveLevel(), logging.WARNING))
    f = RedactingFilter(redact)
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(f)

    def undo() -> None:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
        for h in handlers:
            h.removeFilter(f)

    return undo
