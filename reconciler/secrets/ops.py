"""What the ``atlas secrets`` commands do, as functions of tokens and a KeyRing.

No file, terminal or editor here: the command module reads the Secrets document
(``secrets.document``), asks for values and runs ``$EDITOR``, then hands tokens and text to
these functions and writes back what they return. Every error is a ``SecretsError``
naming the environment and the secret; none contains a value.

* ``set_value`` encrypts one value, keeping the old token when the value is the
  same, and refuses a key that decrypts none of the environment's other secrets.
* ``edit_buffer``/``parse_edit_buffer`` are the text ``atlas secrets edit`` puts in
  front of ``$EDITOR`` (``name: value`` YAML read back with every scalar as text),
  and ``apply_edit`` turns the edited values into token changes.
* ``rotate`` re-encrypts every token under a new primary key (timestamps kept);
  ``primary_only`` checks that the older keys are no longer needed.
* ``entries`` and ``textconv`` describe tokens without any key: name, when it was
  set (Fernet tokens carry that in clear) and a fingerprint of the ciphertext.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import yaml

from reconciler.errors import SecretsError
from reconciler.manifests.load import load_text
from reconciler.secrets.keys import (
    SECRET_NAME,
    KeyRing,
    SecretValue,
    fingerprint,
    generate_key,
    token_bytes,
    token_time,
)

ADDED, CHANGED, REMOVED, UNCHANGED = "added", "changed", "removed", "unchanged"


def _where(env: str, name: str) -> str:
    return f"environment {env!r}: secret {name!r}"


def check_name(env: str, name: str) -> None:
    if not SECRET_NAME.match(name):
        raise SecretsError(
            f"environment {env!r}: {name!r} is not a secret name: expected letters, digits "
            "and '_', starting with a letter or '_', at most 64 characters"
        )


def check_value(env: str, name: str, value: str) -> None:
    if value == "":
        raise SecretsError(f"{_where(env, name)}: the value is empty; nothing was changed")
    if "\x00" in value:
        raise SecretsError(
            f"{_where(env, name)}: the value contains a NUL byte, which no environment "
            "variable can hold"
        )


def value_from_input(env: str, name: str, raw: bytes) -> str:
    """A value piped on stdin: UTF-8, one trailing newline removed, not empty."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SecretsError(f"{_where(env, name)}: the value is not UTF-8 text") from exc
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    check_value(env, name, text)
    return text


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class Entry:
    """A secret as anyone can see it: name, when it was set, a ciphertext fingerprint."""

    name: str
    set_at: int | None  # Unix seconds; None when the token is malformed
    fingerprint: str

    @property
    def set_at_text(self) -> str:
        return when(self.set_at) if self.set_at is not None else "invalid token"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "setAt": (
                datetime.fromtimestamp(self.set_at, UTC).isoformat().replace("+00:00", "Z")
                if self.set_at is not None
                else None
            ),
            "fingerprint": self.fingerprint,
            "valid": self.set_at is not None,
        }


def when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def entries(tokens: Mapping[str, str]) -> list[Entry]:
    return [Entry(name, token_time(tok), fingerprint(tok)) for name, tok in tokens.items()]


# --------------------------------------------------------------------------- decrypting


def decrypt_all(ring: KeyRing, env: str, tokens: Mapping[str, str]) -> dict[str, SecretValue]:
    """Every value; the first that cannot be read raises, naming it."""
    return {name: ring.decrypt(env, name, token) for name, token in tokens.items()}


def check_key(ring: KeyRing, env: str, tokens: Mapping[str, str]) -> list[str]:
    """Refuse a key that opens none of ``tokens``; else the names it cannot read.

    A malformed token, or one copied under another name, says nothing against the key.
    """
    unreadable: list[str] = []
    key_fits = False
    wrong_key: SecretsError | None = None
    for name, token in tokens.items():
        try:
            ring.decrypt(env, name, token)
            key_fits = True
        except SecretsError as exc:
            unreadable.append(name)
            if ring.opens(token):
                key_fits = True
            elif token_bytes(token) is not None and wrong_key is None:
                wrong_key = exc
    if wrong_key is not None and not key_fits:
        raise SecretsError(
            f"environment {env!r}: the keys in {ring.source} decrypt none of its secrets "
            f"({', '.join(unreadable)}): is this the key of {env!r}?"
        ) from wrong_key
    return unreadable


def set_value(
    ring: KeyRing, env: str, tokens: Mapping[str, str], name: str, value: str
) -> tuple[str | None, str]:
    """(new token, added|changed) or (None, unchanged) when ``name`` already holds ``value``."""
    check_name(env, name)
    check_value(env, name, value)
    others = {n: t for n, t in tokens.items() if n != name}
    check_key(ring, env, others)
    if name in tokens:
        try:
            if ring.decrypt(env, name, tokens[name]).reveal() == value:
                return None, UNCHANGED
        except SecretsError:
            pass  # a broken token is what `set` repairs
        return ring.encrypt(name, value), CHANGED
    return ring.encrypt(name, value), ADDED


@dataclass(frozen=True)
class EditResult:
    """What an edit changes: tokens to write (name → token) and names to remove."""

    write: dict[str, str]
    remove: tuple[str, ...]
    changes: tuple[tuple[str, str], ...]  # (name, added|changed|removed), names sorted


def apply_edit(
    ring: KeyRing,
    env: str,
    before: Mapping[str, SecretValue],
    after: Mapping[str, str],
) -> EditResult:
    """Tokens for the values that changed or were added; removals for deleted names."""
    write: dict[str, str] = {}
    changes: list[tuple[str, str]] = []
    for name, value in after.items():
        check_name(env, name)
        check_value(env, name, value)
        old = before.get(name)
        if old is None:
            write[name] = ring.encrypt(name, value)
            changes.append((name, ADDED))
        elif old.reveal() != value:
            write[name] = ring.encrypt(name, value)
            changes.append((name, CHANGED))
    removed = tuple(sorted(n for n in before if n not in after))
    changes += [(n, REMOVED) for n in removed]
    return EditResult(write, removed, tuple(sorted(changes)))


# --------------------------------------------------------------------------- keys


def rotate(ring: KeyRing, env: str, tokens: Mapping[str, str]) -> tuple[KeyRing, dict[str, str]]:
    """A ring with a new primary key, and every token re-encrypted under it.

    Every token is decrypted first (so a broken one stops the rotation before anything
    is written); each keeps its name binding and the time it was set.
    """
    decrypt_all(ring, env, tokens)
    new_ring = ring.with_primary(generate_key())
    return new_ring, {name: new_ring.rotate(token) for name, token in tokens.items()}


def primary_only(ring: KeyRing, env: str, tokens: Mapping[str, str]) -> KeyRing:
    """``ring`` without its older keys, once no token needs them."""
    single = ring.primary_only()
    for name, token in tokens.items():
        try:
            single.decrypt(env, name, token)
        except SecretsError as exc:
            ring.decrypt(env, name, token)  # unreadable with every key: say that instead
            raise SecretsError(
                f"{_where(env, name)}: still encrypted with an older key; run "
                f"`atlas secrets rotate {env}` first"
            ) from exc
    return single


# --------------------------------------------------------------------------- editing


class _Dumper(yaml.SafeDumper):
    """Writes values of several lines as literal blocks."""


def _plain_enough(text: str) -> bool:
    """True when YAML reads ``text`` back as written outside double quotes."""
    return all(c == "\n" or (c.isprintable() and c not in "\x85\u2028\u2029\ufeff") for c in text)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if not _plain_enough(data):
        style: str | None = '"'  # escapes for line separators and control characters
    else:
        style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)

EDIT_HEADER = """\
# Secrets of environment {env} ({where}), DECRYPTED.
# One `name: value` per line (YAML; every value is read as text). Use a `|` block
# for a value of several lines. Delete a line to remove that secret.
# Save and quit to encrypt the changes; quit without saving, or make the editor
# exit with an error (vim: :cq), to change nothing. This file is deleted afterwards.
"""


def edit_buffer(env: str, where: str, values: Mapping[str, SecretValue]) -> str:
    """The text put in front of ``$EDITOR``: a header, then ``name: value`` lines."""
    plain = {name: v.reveal() for name, v in values.items()}
    body = (
        yaml.dump(plain, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
        if plain
        else ""
    )
    return EDIT_HEADER.format(env=env, where=where) + body


def parse_edit_buffer(env: str, text: str) -> dict[str, str]:
    """The ``name: value`` pairs of an edited buffer; errors give lines, never content."""
    try:
        node = yaml.compose(text, Loader=yaml.BaseLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise SecretsError(
            f"environment {env!r}: the edited secrets are not valid YAML ({line}); "
            "nothing was changed"
        ) from exc
    except yaml.YAMLError as exc:
        raise SecretsError(
            f"environment {env!r}: the edited secrets are not valid YAML; nothing was changed"
        ) from exc
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise SecretsError(
            f"environment {env!r}: line {node.start_mark.line + 1}: expected `name: value` "
            "lines; nothing was changed"
        )
    values: dict[str, str] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        if not isinstance(key, yaml.ScalarNode) or not SECRET_NAME.match(key.value):
            raise SecretsError(
                f"environment {env!r}: line {line}: not a secret name (letters, digits and "
                "'_', starting with a letter or '_'); nothing was changed"
            )
        name = key.value
        if name in values:
            raise SecretsError(f"{_where(env, name)}: line {line}: set twice; nothing was changed")
        if not isinstance(value, yaml.ScalarNode):
            raise SecretsError(
                f"{_where(env, name)}: line {line}: expected a text value (a `|` block for "
                "several lines); nothing was changed"
            )
        values[name] = value.value
    return values


# --------------------------------------------------------------------------- git textconv


def textconv(text: str, rel: str) -> str:
    """A Secrets file as ``git diff`` should show it: names, set times and fingerprints.

    Tokens are public, but a diff of two tokens says nothing to a reviewer; a line per
    name with the fingerprint of its token shows exactly which secrets were added,
    removed or changed. Documents of other kinds are shown as YAML.
    """
    docs, problems = load_text(text, rel)
    if not docs:
        reason = problems[0].message if problems else "no documents"
        return f"# not a readable manifest file ({reason}); shown as it is\n{text}"
    out: list[str] = []
    for doc in docs:
        data = doc.data if isinstance(doc.data, dict) else {}
        if doc.kind != "Secrets":
            out.append(yaml.safe_dump(doc.data, sort_keys=False, allow_unicode=True).rstrip())
            out.append("---")
            continue
        api = data.get("apiVersion", "?")
        out.append(f"{doc.ref} ({api}): encrypted values, shown by fingerprint")
        spec = data.get("spec")
        tokens = spec.get("data") if isinstance(spec, dict) else None
        if not isinstance(tokens, dict) or not tokens:
            out.append("  (no secrets)")
        else:
            for name, token in tokens.items():
                tok = token if isinstance(token, str) else ""
                stamp = token_time(tok)
                shown = f"set {when(stamp)}" if stamp is not None else "INVALID TOKEN"
                out.append(f"  {name}: {shown}, fingerprint {fingerprint(tok)}")
        out.append("---")
    if out and out[-1] == "---":
        out.pop()
    return "\n".join(out) + "\n"
