"""How the build stage opens the secrets a manifest refers to.

``SecretsSource`` turns the encrypted token of a secret into a ``SecretValue``:
``KeyRingSecrets`` with a key ring in hand, ``KeyFileSecrets`` reading the
environment's key file when the first secret is needed (so its errors name that
secret), ``SealedSecrets`` where there is no key (a pull-request plan: values stay
encrypted, digests cover the tokens). ``key_file_secrets`` finds an environment's
key file the documented way and gives its source, or None when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from reconciler.errors import SecretsError
from reconciler.secrets.keys import KeyRing, SecretValue, find_key_file, load_key_file, sealed


class SecretsSource(Protocol):
    """Turns an encrypted token of the environment's Secrets document into a value."""

    def open(self, env: str, name: str, token: str) -> SecretValue: ...


SecretsFor = Callable[[str], SecretsSource | None]  # environment → its secrets


class KeyRingSecrets:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def open(self, env: str, name: str, token: str) -> SecretValue:
        return self.keyring.decrypt(env, name, token)


class KeyFileSecrets:
    """Reads the key file when the first secret is needed, so its errors name that secret."""

    def __init__(self, load: Callable[[], KeyRing]) -> None:
        self._load = load
        self._keyring: KeyRing | None = None

    def open(self, env: str, name: str, token: str) -> SecretValue:
        if self._keyring is None:
            try:
                self._keyring = self._load()
            except SecretsError as exc:
                raise SecretsError(
                    f"environment {env!r}: cannot decrypt secret {name!r}: {exc}"
                ) from exc
        return self._keyring.decrypt(env, name, token)


class SealedSecrets:
    """No key here (a pull-request plan): values stay encrypted; digests cover the tokens."""

    def open(self, env: str, name: str, token: str) -> SecretValue:
        return sealed(name, token)


def key_file_secrets(
    env: str, explicit: Path | None, from_environ: str | None, config_dir: Path
) -> SecretsSource | None:
    """The key file of ``env`` (``--key-file``, else ``$ATLAS_SECRETS_KEY_FILE``, else
    ``<config dir>/keys/<env>.key``), read when first needed; None when none was named
    and the default one does not exist (a keyless plan)."""
    path, chosen = find_key_file(env, explicit, from_environ, config_dir)
    if not chosen and not path.exists():
        return None
    return KeyFileSecrets(lambda: load_key_file(path))
