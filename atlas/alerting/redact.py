"""Keep secret values out of anything that is shown or stored.

A ``Redactor`` knows the secret values of the channels (an SMTP password, a webhook
URL read from the environment) and replaces each, and the forms it may take in an
error message (URL-quoted, the path and query of a secret URL, the base64 of an
SMTP ``AUTH PLAIN``), with ``<redacted>``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
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
