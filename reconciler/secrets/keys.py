"""Encrypted secrets: Fernet per value, several keys through MultiFernet, redaction.

A value is encrypted together with its name (``name NUL value``), and the name is
checked on decryption, so a token copied under another name is refused. Key files
hold one Fernet key per line (``#`` comments allowed); the first key encrypts, every
key decrypts, which is how rotation works. A key file that group or others can read
is refused, and so is a symbolic link (it is opened with ``O_NOFOLLOW``), a file owned
by another user than the current one or root, and anything but a regular file.

Decrypted values travel as ``SecretValue``, whose ``repr``/``str`` never show the
value; only ``reveal()`` does, and only the env-file renderer and ``atlas secrets
get``/``edit`` call it. ``KeyRing`` never shows its keys either.

Keyed digests (HMAC-SHA256) let the planner say "secret smtp_password changed"
without storing or comparing plaintext hashes. Their key is derived from the *last*
key of the file, so rotation (which prepends a key) keeps digests and plans stable;
once a rotation has happened the key file also carries that digest key on a
``digest-key:`` line, so dropping the old Fernet key keeps them stable too.
When no key is available (a pull-request plan), ``sealed`` values stand in: their
digest is taken over the public ciphertext, which changes whenever the value is set.

Errors are ``SecretsError``; they name the environment, the secret and the key file,
never a value or a key.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from reconciler.errors import SecretsError
from seams.fsio import write_atomic

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


def _fernet_module() -> ModuleType:
    """cryptography.fernet, imported when a value is first encrypted or decrypted:
    validating and planning without secrets need not pay for it."""
    from cryptography import fernet

    return fernet


_SEPARATOR = b"\x00"
_DIGEST_KEY_PREFIX = "digest-key:"
_TOKEN_TEXT = re.compile(r"^[A-Za-z0-9_-]+=*\Z")
# version (1) + timestamp (8) + IV (16) + at least one AES block (16) + HMAC (32)
_TOKEN_MIN_BYTES = 1 + 8 + 16 + 16 + 32
_TOKEN_OVERHEAD = 1 + 8 + 16 + 32
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


class SecretValue:
    """A decrypted secret. Printing it shows its name, never its value."""

    __slots__ = ("_value", "digest", "name")

    def __init__(self, name: str, value: str | None, digest: str) -> None:
        self.name = name
        self._value = value
        self.digest = digest

    @property
    def sealed(self) -> bool:
        """True when the value is not available (no key): only its digest is."""
        return self._value is None

    def reveal(self) -> str:
        if self._value is None:
            raise SecretsError(f"secret {self.name!r} is sealed: no key to decrypt it")
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({self.name!r}, <redacted>)"

    __str__ = __repr__


# --------------------------------------------------------------------------- tokens


def token_bytes(token: str) -> bytes | None:
    """The decoded bytes of a well-formed Fernet token, or None (corrupted or truncated)."""
    if not isinstance(token, str) or not _TOKEN_TEXT.match(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < _TOKEN_MIN_BYTES or raw[0] != 0x80 or (len(raw) - _TOKEN_OVERHEAD) % 16:
        return None
    return raw


def token_time(token: str) -> int | None:
    """When a token was made (Unix seconds, from the token itself); None when malformed.

    Fernet tokens carry their creation time in clear; rotation keeps it, so this is
    when the value was last set.
    """
    raw = token_bytes(token)
    return int.from_bytes(raw[1:9], "big") if raw is not None else None


def fingerprint(token: str) -> str:
    """A short public fingerprint of a token (of the ciphertext, not of the value)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class KeyRing:
    """The keys of one environment; the first encrypts. Its repr never shows a key."""

    keys: tuple[bytes, ...] = field(repr=False)
    source: str  # where the keys came from, for messages (never the keys)
    # The HMAC key of digests when the key file names one (after a rotation).
    stored_digest_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SecretsError(f"{self.source}: no keys in key file")

    @property
    def _fernet(self) -> MultiFernet:
        fernet = _fernet_module()
        multi: MultiFernet = fernet.MultiFernet([fernet.Fernet(k) for k in self.keys])
        return multi

    def encrypt(self, name: str, value: str) -> str:
        plain = name.encode() + _SEPARATOR + value.encode()
        return self._fernet.encrypt(plain).decode("ascii")

    def decrypt(self, env: str, name: str, token: str) -> SecretValue:
        """The value of ``name``; SecretsError naming env and secret when it cannot be read."""
        where = f"environment {env!r}: secret {name!r}"
        if token_bytes(token) is None:
            raise SecretsError(
                f"{where}: the encrypted value is corrupted or truncated (not a whole "
                "Fernet token); set it again with `atlas secrets set`"
            )
        try:
            plain = self._fernet.decrypt(token.encode("ascii"))
        except (_fernet_module().InvalidToken, ValueError, UnicodeEncodeError) as exc:
            raise SecretsError(
                f"{where}: cannot be decrypted with the keys in {self.source}: the key is "
                "wrong for this environment, or the encrypted value was altered"
            ) from exc
        bound, sep, value = plain.partition(_SEPARATOR)
        if not sep or bound != name.encode():
            other = bound.decode("utf-8", "replace") if sep else ""
            detail = (
                f"holds the value encrypted for secret {other!r}"
                if sep and SECRET_NAME.match(other)
                else "holds a value encrypted for another name"
            )
            raise SecretsError(
                f"{where}: {detail} (copied under another name?); "
                "set it again with `atlas secrets set`"
            )
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SecretsError(f"{where}: the decrypted value is not UTF-8 text") from exc
        return SecretValue(name, text, self.digest(name, text))

    def opens(self, token: str) -> bool:
        """True when one of the keys authenticates ``token`` (whatever name it is bound to)."""
        try:
            self._fernet.decrypt(token.encode("ascii"))
        except (_fernet_module().InvalidToken, ValueError, UnicodeEncodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the primary key (name binding and timestamp are kept)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def digest(self, name: str, value: str) -> str:
        mac = hmac.new(self.digest_key, name.encode() + _SEPARATOR + value.encode(), hashlib.sha256)
        return "hmac-sha256:" + mac.hexdigest()[:32]

    @property
    def digest_key(self) -> bytes:
        """The HMAC key of digests: stored in the key file, or derived from the last key."""
        if self.stored_digest_key is not None:
            return self.stored_digest_key
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"atlas secret digest")
        return hkdf.derive(self.keys[-1])

    def with_primary(self, key: str) -> KeyRing:
        """This ring with ``key`` put first (it encrypts from now on); digests unchanged."""
        return KeyRing((key.encode("ascii"), *self.keys), self.source, self.digest_key)

    def primary_only(self) -> KeyRing:
        """This ring without its older keys; digests unchanged."""
        return KeyRing(self.keys[:1], self.source, self.digest_key)


def sealed(name: str, token: str) -> SecretValue:
    """A secret whose value is unknown here: its digest covers the public token."""
    return SecretValue(
        name, None, "token-sha256:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    )


def generate_key() -> str:
    key: bytes = _fernet_module().Fernet.generate_key()
    return key.decode("ascii")


def parse_keys(text: str, source: str) -> KeyRing:
    keys = []
    digest_key: bytes | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(_DIGEST_KEY_PREFIX):
            try:
                digest_key = base64.urlsafe_b64decode(
                    line[len(_DIGEST_KEY_PREFIX) :].strip().encode("ascii")
                )
            except (binascii.Error, ValueError) as exc:
                raise SecretsError(
                    f"{source}:{number}: not a digest key (url-safe base64)"
                ) from exc
            if len(digest_key) != 32:
                raise SecretsError(f"{source}:{number}: a digest key has 32 bytes")
            continue
        try:  # what Fernet() checks, without importing cryptography
            if len(base64.urlsafe_b64decode(line.encode("ascii"))) != 32:
                raise ValueError("not 32 bytes")
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise SecretsError(
                f"{source}:{number}: not a Fernet key (32 url-safe base64 bytes)"
            ) from exc
        keys.append(line.encode("ascii"))
    return KeyRing(tuple(keys), source, digest_key)


def format_keys(ring: KeyRing) -> str:
    """The text of a key file holding ``ring`` (its digest key included)."""
    lines = [
        "# Atlas secrets keys: the first encrypts, all decrypt. Keep out of git.",
        *(k.decode("ascii") for k in ring.keys),
    ]
    if len(ring.keys) > 1 or ring.stored_digest_key is not None:
        lines.append(
            _DIGEST_KEY_PREFIX + " " + base64.urlsafe_b64encode(ring.digest_key).decode("ascii")
        )
    return "\n".join(lines) + "\n"


def _refuse_link(path: Path) -> SecretsError:
    try:
        target = os.readlink(path)
    except OSError:
        return SecretsError(f"key file {path}: too many levels of symbolic links")
    return SecretsError(
        f"key file {path} is a symbolic link (to {target}); a key file is opened only as "
        f"itself: name the file directly, or replace the link: mv {target} {path}"
    )


def _check_key_file(path: Path, info: os.stat_result) -> None:
    """Refuse what is not a regular file, not ours (or root's), or open to others."""
    if not stat.S_ISREG(info.st_mode):
        raise SecretsError(f"key file {path} is not a regular file")
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise SecretsError(
            f"key file {path} is owned by another user (uid {info.st_uid}); a key file must "
            f"belong to this user (uid {me}) or root; run: chown {me} {path}"
        )
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"key file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )


def _read_key_file(path: Path) -> bytes:
    """The file's bytes, opened without following a final symlink and checked on its
    descriptor (so what was checked is what is read)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise SecretsError(f"key file {path} does not exist") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse_link(path) from exc
        raise SecretsError(f"key file {path}: {exc.strerror}") from exc
    try:
        _check_key_file(path, os.fstat(fd))
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise SecretsError(f"key file {path} cannot be read: {exc.strerror}") from exc
    finally:
        os.close(fd)


def check_key_file_mode(path: Path) -> None:
    """The checks of ``load_key_file`` without parsing: no symlink, ours or root's,
    readable by no one else (``atlas doctor``)."""
    _read_key_file(path)


def load_key_file(path: Path) -> KeyRing:
    """Read a key file, refusing a symlink, another user's file, or one others may read."""
    raw = _read_key_file(path)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise SecretsError(f"key file {path} cannot be read: it is not ASCII text") from exc
    return parse_keys(text, str(path))


def write_key_file(path: Path, keys: list[str] | KeyRing) -> None:
    """Create or replace a key file with mode 0600, atomically (its folder made 0700)."""
    ring = (
        keys
        if isinstance(keys, KeyRing)
        else KeyRing(tuple(k.encode("ascii") for k in keys), str(path))
    )
    try:
        write_atomic(path, format_keys(ring).encode("ascii"), 0o600, parents_mode=0o700)
    except OSError as exc:
        raise SecretsError(f"key file {path} cannot be written: {exc.strerror}") from exc


def default_key_file(config_dir: Path, env: str) -> Path:
    """Where an environment's key lives when neither --key-file nor the variable is set."""
    return config_dir / "keys" / f"{env}.key"


def find_key_file(
    env: str, explicit: Path | None, from_environ: str | None, config_dir: Path
) -> tuple[Path, bool]:
    """(path, chosen explicitly): --key-file, then ATLAS_SECRETS_KEY_FILE, then the default."""
    if explicit is not None:
        return explicit, True
    if from_environ:
        return Path(from_environ), True
    return default_key_file(config_dir, env), False
