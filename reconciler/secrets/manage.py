"""Managing an environment's secrets in a manifests repository: what each ``atlas
secrets`` command does to the Secrets document and the key file.

The command module finds the repository, reads values (stdin or a hidden prompt),
runs the editor and prints; it hands those in as callables, so everything decided
here — which key, what is refused, what is written and in which order — is tested
without a terminal. Every error is a ``SecretsError`` naming the environment (and
the secret) that leaves the repository and the key file as they were; no value is
ever part of a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SecretsError
from reconciler.manifests.assemble import assemble
from reconciler.manifests.load import load_repository
from reconciler.manifests.references import referenced_secrets
from reconciler.secrets import ops
from reconciler.secrets.document import SecretsDocument, open_document
from reconciler.secrets.keys import (
    KeyRing,
    SecretValue,
    find_key_file,
    generate_key,
    load_key_file,
    write_key_file,
)

__all__ = [
    "Change",
    "Edited",
    "KeyFile",
    "Listing",
    "Rotated",
    "drop_keys",
    "edit_secrets",
    "get_secret",
    "keygen",
    "list_secrets",
    "ops",  # value checks and the textconv driver, for the command line
    "references",
    "remove_secret",
    "rotate_keys",
    "set_secret",
]


@dataclass(frozen=True)
class KeyFile:
    path: Path
    chosen: bool  # named by --key-file or $ATLAS_SECRETS_KEY_FILE, not the default

    @classmethod
    def find(
        cls, env: str, explicit: Path | None, from_environ: str | None, config_dir: Path
    ) -> KeyFile:
        return cls(*find_key_file(env, explicit, from_environ, config_dir))

    def keyring(self, env: str, name: str | None = None) -> KeyRing:
        """The environment's keys; errors say which environment and secret needed them."""
        what = f"environment {env!r}" + (f": secret {name!r}" if name else "")
        if not self.path.exists():
            how = (
                "check --key-file / ATLAS_SECRETS_KEY_FILE"
                if self.chosen
                else f"create it with `atlas secrets keygen --env {env}` or pass --key-file"
            )
            raise SecretsError(f"{what}: no key file {self.path} ({how})")
        try:
            return load_key_file(self.path)
        except SecretsError as exc:
            raise SecretsError(f"{what}: {exc}") from exc


def references(repo: Path, env: str) -> dict[str, str]:
    """Secret name → the Kind/name that uses it, from the environment's valid manifests."""
    return referenced_secrets(assemble(load_repository(repo), env).manifests)


@dataclass(frozen=True)
class Change:
    environment: str
    change: str  # added | changed | removed | unchanged
    document: str  # the Secrets file, relative to the repository
    written: list[str]


def keygen(repo: Path | None, env: str, key: KeyFile, force: bool) -> int:
    """Write a new key file; how many secrets the environment already has under
    another key (which the new key cannot decrypt)."""
    tokens = open_document(repo, env).tokens() if repo else {}
    if key.path.exists() and not force:
        raise SecretsError(
            f"environment {env!r}: key file {key.path} already exists; refusing to replace it "
            f"(it decrypts the secrets committed for {env}). Use `atlas secrets rotate {env}` "
            "to change keys, or --force to replace it anyway"
        )
    write_key_file(key.path, [generate_key()])
    return len(tokens)


def set_secret(
    repo: Path, env: str, name: str, key: KeyFile, read_value: Callable[[], str]
) -> Change:
    """Encrypt the value ``read_value`` gives (asked for only once the name, the
    document and the key are known to be fine)."""
    ops.check_name(env, name)
    doc = open_document(repo, env, create=True)
    tokens = doc.tokens()
    ring = key.keyring(env, name)
    ops.check_key(ring, env, {n: t for n, t in tokens.items() if n != name})
    token, what = ops.set_value(ring, env, tokens, name, read_value())
    written: list[str] = []
    if token is not None:
        doc.set_token(name, token)
        written = doc.save()
    return Change(env, what, doc.rel, written)


def _existing(doc: SecretsDocument, env: str, name: str) -> str:
    tokens = doc.tokens()
    if name not in tokens:
        raise SecretsError(
            f"environment {env!r}: no secret named {name!r} "
            f"(its secrets: {', '.join(tokens) or 'none'})"
        )
    return tokens[name]


def get_secret(repo: Path, env: str, name: str, key: KeyFile) -> SecretValue:
    token = _existing(open_document(repo, env), env, name)
    return key.keyring(env, name).decrypt(env, name, token)


@dataclass(frozen=True)
class Listing:
    document: str | None  # Kind/name of the Secrets document, None when there is none
    file: str | None
    entries: list[ops.Entry]


def list_secrets(repo: Path, env: str) -> Listing:
    doc = open_document(repo, env)
    found = ops.entries(doc.tokens())
    return Listing(doc.ref if doc.file else None, doc.rel if doc.file else None, found)


def remove_secret(repo: Path, env: str, name: str, force: bool) -> Change:
    doc = open_document(repo, env)
    if name not in doc.tokens():
        raise SecretsError(f"environment {env!r}: no secret named {name!r}")
    user = references(repo, env).get(name)
    if user and not force:
        raise SecretsError(
            f"environment {env!r}: secret {name!r} is used by {user}; remove that reference "
            "first, or pass --force. Nothing was changed"
        )
    doc.remove(name)
    return Change(env, ops.REMOVED, doc.rel, doc.save())


@dataclass(frozen=True)
class Edited:
    changes: list[tuple[str, str]]  # (name, added | changed | removed)
    written: list[str]
    warnings: list[str]


def edit_secrets(repo: Path, env: str, key: KeyFile, edit: Callable[[str, str], str]) -> Edited:
    """Every value as text through ``edit(buffer, rel)`` (the editor); what changed
    is re-encrypted. Removing a secret a manifest uses is allowed, with a warning."""
    doc = open_document(repo, env, create=True)
    ring = key.keyring(env)
    before = ops.decrypt_all(ring, env, doc.tokens())
    after = ops.parse_edit_buffer(env, edit(ops.edit_buffer(env, doc.rel, before), doc.rel))
    result = ops.apply_edit(ring, env, before, after)
    if not result.changes:
        return Edited([], [], [])
    used = references(repo, env)
    warnings = [
        f"environment {env!r}: removed secret {name!r} is used by {used[name]}"
        for name in result.remove
        if name in used
    ]
    for name, token in result.write.items():
        doc.set_token(name, token)
    for name in result.remove:
        doc.remove(name)
    return Edited(list(result.changes), doc.save(), warnings)


@dataclass(frozen=True)
class Rotated:
    secrets: list[str]
    keys: int  # keys the key file holds now
    written: list[str]


def rotate_keys(repo: Path, env: str, key: KeyFile, drop_old: bool) -> Rotated:
    doc = open_document(repo, env)
    ring, tokens = ops.rotate(key.keyring(env), env, doc.tokens())
    # Key file first: until the Secrets file is written, its old key still decrypts it.
    write_key_file(key.path, ring)
    for name, token in tokens.items():
        doc.set_token(name, token)
    written = doc.save()
    kept = len(ring.keys)
    if drop_old:
        write_key_file(key.path, ring.primary_only())
        kept = 1
    return Rotated(sorted(tokens), kept, written)


def drop_keys(repo: Path, env: str, key: KeyFile) -> int:
    """Forget the older keys once every value uses the primary one; how many went."""
    tokens = open_document(repo, env).tokens()
    ring = key.keyring(env)
    dropped = len(ring.keys) - 1
    if dropped:
        write_key_file(key.path, ops.primary_only(ring, env, tokens))
    return dropped
