"""TLS of the API: an ``ssl.SSLContext`` built here and handed to uvicorn.

Certificate and key come from secrets (PEM in the env variables api.json names: they
are written into a private 0700 directory as 0600 files only for ``load_cert_chain``
to read, and removed at once) or from files on the host. Files are watched: at a new
connection's ClientHello (the SNI callback runs for every handshake, with or without
a server name), at most once per ``CHECK_S``, their size, inode and mtime are
compared with those loaded; when they changed a fresh context is loaded and the new
connection (and every later one) handshakes with it. Open connections keep the
context they started with, so nothing is dropped. A certificate that does not load
(a half-written file) keeps the previous one and says so once.
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from atlas.api.settings import TlsConfig
from atlas.errors import ConfigError

log = logging.getLogger("atlas.api.tls")
CHECK_S = 1.0  # how often (at most) a handshake looks at the files
Signature = tuple[tuple[int, int, int], ...]


def fresh_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"tls: cannot load the certificate {cert} with the key {key}: {reason} "
            "(expected a PEM certificate chain and its matching PEM private key)"
        ) from exc
    return ctx


def context_from_pem(cert_pem: str, key_pem: str, runtime_dir: Path | None) -> ssl.SSLContext:
    """A context from PEM text, through 0600 files that live only while they are read."""
    folder = Path(tempfile.mkdtemp(prefix="atlas-api-tls-", dir=runtime_dir))  # mode 0700
    try:
        paths = []
        for name, text in (("cert.pem", cert_pem), ("key.pem", key_pem)):
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            paths.append(path)
        try:
            return fresh_context(paths[0], paths[1])
        except ConfigError as exc:
            raise ConfigError(
                "tls: the certificate and key secrets do not load: "
                + str(exc).split(": ", 2)[-1].split(" (", 1)[0]
                + " (expected a PEM certificate chain and its matching PEM private key)"
            ) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class ReloadingFiles:
    """A server context whose handshakes switch to a fresh one when the files change."""

    def __init__(self, cert: Path, key: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.cert, self.key, self.clock = cert, key, clock
        self.loaded = self._signature()
        self.current = fresh_context(cert, key)
        self.context = fresh_context(cert, key)  # the one uvicorn holds
        self.context.sni_callback = self._on_hello
        self.checked = clock()
        self.failed: Signature | None = None

    def _signature(self) -> Signature:
        out = []
        for path in (self.cert, self.key):
            try:
                st = path.stat()
            except OSError:
                out.append((0, 0, 0))
            else:
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def check(self) -> None:
        """Load the files again if they changed since they were loaded."""
        now = self.clock()
        if now - self.checked < CHECK_S:
            return
        self.checked = now
        signature = self._signature()
        if signature in (self.loaded, self.failed):
            return
        try:
            self.current = fresh_context(self.cert, self.key)
        except ConfigError as exc:
            self.failed = signature
            log.warning("%s; new connections keep the previous certificate", exc)
            return
        self.loaded, self.failed = signature, None
        log.info("tls: loaded the renewed certificate %s", self.cert)

    def _on_hello(self, conn: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        self.check()
        conn.context = self.current


def server_context(
    tls: TlsConfig, env: Mapping[str, str], runtime_dir: Path | None = None
) -> ssl.SSLContext:
    """The SSLContext the API serves with (``tls`` from api.json)."""
    if tls.cert_file is not None and tls.key_file is not None:
        return ReloadingFiles(tls.cert_file, tls.key_file).context
    pems = []
    for variable in (tls.cert_env, tls.key_env):
        value = env.get(variable or "")
        if not value:
            raise ConfigError(
                f"tls: the env variable {variable} (the api's env file) is expected to hold "
                "a PEM certificate or key, and is not set"
            )
        pems.append(value)
    return context_from_pem(pems[0], pems[1], runtime_dir)
