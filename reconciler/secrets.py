"""Encrypted secrets: Fernet per value, several keys through MultiFernet, redaction.

A value is encrypted together with its name (``name NUL value``), and the name is
checked on decryption, so a token copied under another name is refused. Key files
hold one Fernet key per line (``#`` comments allowed); the first key encrypts, every
key decrypts, which is how rotation works. A key file that group or others can read
is refused.

Decrypted values travel as ``SecretValue``, whose ``repr``/``str`` never show the
value; only ``reveal()`` does, and only the env-file renderer calls it.

Keyed digests (HMAC-SHA256 under a key derived from the key file) let the planner
say "secret smtp_password changed" without storing or comparing plaintext hashes.
When no key is available (a pull-request plan), ``sealed`` values stand in: their
digest is taken over the public ciphertext, which changes whenever the value is set.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from reconciler.errors import SecretsError

_SEPARATOR = b"\x00"


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


@dataclass(frozen=True)
class KeyRing:
    """The keys of one environment; the first encrypts."""

    keys: tuple[bytes, ...]
    source: str  # where the keys came from, for messages (never the keys)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SecretsError(f"{self.source}: no keys in key file")

    @property
    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(k) for k in self.keys])

    def encrypt(self, name: str, value: str) -> str:
        plain = name.encode() + _SEPARATOR + value.encode()
        return self._fernet.encrypt(plain).decode("ascii")

    def decrypt(self, env: str, name: str, token: str) -> SecretValue:
        try:
            plain = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError, UnicodeEncodeError) as exc:
            raise SecretsError(
                f"environment {env!r}: secret {name!r} cannot be decrypted with the keys in "
                f"{self.source}: wrong key, or the token is corrupted or truncated"
            ) from exc
        bound, sep, value = plain.partition(_SEPARATOR)
        if not sep or bound != name.encode():
            raise SecretsError(
                f"environment {env!r}: secret {name!r} holds a value encrypted for another "
                "name; set it again with `atlas secrets set`"
            )
        text = value.decode("utf-8")
        return SecretValue(name, text, self.digest(name, text))

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the primary key (name binding is kept)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def digest(self, name: str, value: str) -> str:
        mac = hmac.new(
            self._digest_key(), name.encode() + _SEPARATOR + value.encode(), hashlib.sha256
        )
        return "hmac-sha256:" + mac.hexdigest()[:32]

    def _digest_key(self) -> bytes:
        # Derived from the *last* key so that rotation (which prepends a new key)
        # keeps digests, and with them plans, stable.
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"atlas secret digest")
        return hkdf.derive(self.keys[-1])


def sealed(name: str, token: str) -> SecretValue:
    """A secret whose value is unknown here: its digest covers the public token."""
    return SecretValue(
        name, None, "token-sha256:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    )


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str, source: str) -> KeyRing:
    keys = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            Fernet(line.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise SecretsError(
                f"{source}:{number}: not a Fernet key (32 url-safe base64 bytes)"
            ) from exc
        keys.append(line.encode("ascii"))
    return KeyRing(tuple(keys), source)


def load_key_file(path: Path) -> KeyRing:
    """Read a key file, refusing one that group or others may read."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise SecretsError(f"key file {path} does not exist") from exc
    except OSError as exc:
        raise SecretsError(f"key file {path}: {exc.strerror}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"key file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"key file {path} cannot be read") from exc
    return parse_keys(text, str(path))


def write_key_file(path: Path, keys: list[str]) -> None:
    """Create or replace a key file with mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write("# Atlas secrets keys: the first encrypts, all decrypt. Keep out of git.\n")
            fh.write("".join(k + "\n" for k in keys))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def open_keyring(
    env: str, explicit: Path | None, from_environ: str | None, config_dir: Path
) -> KeyRing | None:
    """The environment's keys; None when no key was named and the default file is absent."""
    path, chosen = find_key_file(env, explicit, from_environ, config_dir)
    if not chosen and not path.exists():
        return None
    return load_key_file(path)
