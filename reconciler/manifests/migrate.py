"""Convert manifests of an older apiVersion to the current one (``atlas migrate``).

Validation refuses an older apiVersion with a message naming ``atlas migrate PATH``
(``SUPERSEDED`` below feeds ``envelope.SUPERSEDED_API_VERSIONS``); this module is
the one place that knows what changed. ``convert`` is pure: it edits one document
(a plain dict or a ruamel mapping) in place and says what it did; ``migrate_text``
applies it to every document of a file through a round trip that keeps comments,
key order and quoting (yamledit.py). Converting is idempotent: a document already
at the current version is left alone, so a file without older documents comes out
byte for byte the same.

atlas/v1alpha1 → atlas/v1 (docs/migrations.md says the same for operators):

=============  ===============================  ==============================
kind           atlas/v1alpha1                   atlas/v1
=============  ===============================  ==============================
every kind     apiVersion: atlas/v1alpha1       apiVersion: atlas/v1
Environment    spec.secretsRef                  spec.secrets
Environment    spec.logLevel: DEBUG|INFO|WARN|  spec.logLevel: debug|info|
               WARNING|ERROR                    warning|error
Environment    spec.api.bindAddress             spec.api.listen
Environment    spec.reconciler.webhookSecretRef spec.reconciler.webhookSecret
AlertChannel   spec.email.passwordSecretRef     spec.email.passwordSecret
AlertChannel   spec.webhook.urlSecretRef        spec.webhook.urlSecret
AlertChannel   spec.slack.urlSecretRef          spec.slack.urlSecret
BackupPolicy   spec.encryptionKeySecretRef      spec.encryptionKeySecret
Source         spec.pollInterval                spec.interval
Secrets        spec.encryptedData               spec.data
=============  ===============================  ==============================

Secret *names* and encrypted values are untouched, so tokens stay bound to their names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ManifestError, Problem, UsageError
from reconciler.manifests.load import MANIFEST_SUFFIXES

if TYPE_CHECKING:  # ruamel.yaml loads only when something is migrated
    from reconciler.manifests.yamledit import YamlFile

CURRENT = "atlas/v1"
V1ALPHA1 = "atlas/v1alpha1"

SUPERSEDED = {
    V1ALPHA1: (
        f"apiVersion {V1ALPHA1} is no longer accepted: convert it to {CURRENT} with "
        "`atlas migrate PATH` (PATH: this file or the repository folder; "
        "see docs/migrations.md)"
    ),
}

Path_ = tuple[str, ...]

# kind → (where, old field, new field)
_RENAMES: dict[str, list[tuple[Path_, str, str]]] = {
    "Environment": [
        (("spec",), "secretsRef", "secrets"),
        (("spec", "api"), "bindAddress", "listen"),
        (("spec", "reconciler"), "webhookSecretRef", "webhookSecret"),
    ],
    "AlertChannel": [
        (("spec", "email"), "passwordSecretRef", "passwordSecret"),
        (("spec", "webhook"), "urlSecretRef", "urlSecret"),
        (("spec", "slack"), "urlSecretRef", "urlSecret"),
    ],
    "BackupPolicy": [(("spec",), "encryptionKeySecretRef", "encryptionKeySecret")],
    "Source": [(("spec",), "pollInterval", "interval")],
    "Secrets": [(("spec",), "encryptedData", "data")],
}
# kind → (where, field, old value → new value)
_VALUES: dict[str, list[tuple[Path_, str, dict[str, str]]]] = {
    "Environment": [
        (
            ("spec",),
            "logLevel",
            {
                "DEBUG": "debug",
                "INFO": "info",
                "WARN": "warning",
                "WARNING": "warning",
                "ERROR": "error",
            },
        )
    ],
}


class ConversionConflict(ValueError):
    """A document sets both the old and the new name of a field."""

    def __init__(self, path: Path_, message: str) -> None:
        super().__init__(message)
        self.path = path


def _at(doc: MutableMapping[str, Any], path: Path_) -> MutableMapping[str, Any] | None:
    node: Any = doc
    for key in path:
        node = node.get(key) if isinstance(node, MutableMapping) else None
    return node if isinstance(node, MutableMapping) else None


def _dotted(path: Path_, key: str) -> str:
    return ".".join((*path, key))


def _replace_scalar(old: Any, new: str) -> Any:
    """``new`` in the quoting style of ``old`` (ruamel keeps style in str subclasses)."""
    cls = type(old)
    return cls(new) if isinstance(old, str) and cls is not str else new


def convert(doc: Any) -> list[str]:
    """Upgrade one document in place; what changed, in words (empty when nothing did)."""
    if not isinstance(doc, MutableMapping) or doc.get("apiVersion") not in SUPERSEDED:
        return []
    raw_kind = doc.get("kind")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    done = [f"apiVersion {doc['apiVersion']} → {CURRENT}"]
    doc["apiVersion"] = _replace_scalar(doc["apiVersion"], CURRENT)
    for where, old, new in _RENAMES.get(kind, []):
        block = _at(doc, where)
        if block is None:
            continue
        try:
            from reconciler.manifests.yamledit import rename_key

            renamed = rename_key(block, old, new)
        except ValueError as exc:
            raise ConversionConflict(
                (*where, old),
                f"both {_dotted(where, old)} ({V1ALPHA1}) and {_dotted(where, new)} are set; "
                f"keep one",
            ) from exc
        if renamed:
            done.append(f"{_dotted(where, old)} → {_dotted(where, new)}")
    for where, key, mapping in _VALUES.get(kind, []):
        block = _at(doc, where)
        value = block.get(key) if block is not None else None
        if block is not None and isinstance(value, str) and value in mapping:
            block[key] = _replace_scalar(value, mapping[value])
            done.append(f"{_dotted(where, key)}: {value} → {mapping[value]}")
    return done


@dataclass(frozen=True)
class FileMigration:
    """What migrating one file does: its new text and, per document, the changes."""

    rel: str
    path: Path
    before: str
    after: str
    changes: tuple[tuple[str, tuple[str, ...]], ...]  # (Kind/name, changes)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _ref(doc: Any) -> str:
    if not isinstance(doc, MutableMapping):
        return "document"
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, MutableMapping) else None
    return f"{doc.get('kind', '?')}/{name or '?'}"


def _line(doc: Any, path: Path_) -> int:
    """The 1-based line of ``path`` in a ruamel document, 0 when unknown."""
    node: Any = doc
    line = 0
    for key in path:
        lc = getattr(node, "lc", None)
        if lc is None or not isinstance(node, MutableMapping) or key not in node:
            break
        line = lc.key(key)[0] + 1
        node = node[key]
    return line


def migrate_text(text: str, path: Path, rel: str) -> FileMigration:
    """Convert every older document of one file; ManifestError when it cannot be parsed."""
    if not any(version in text for version in SUPERSEDED):
        return FileMigration(rel, path, text, text, ())
    from reconciler.manifests.yamledit import parse

    loaded: YamlFile = parse(text, path, rel)
    changes = []
    problems = []
    for doc in loaded.docs:
        try:
            done = convert(doc)
        except ConversionConflict as exc:
            head = loaded.head.count("\n")
            problems.append(Problem(rel, _line(doc, exc.path) + head, _ref(doc), str(exc)))
            continue
        if done:
            changes.append((_ref(doc), tuple(done)))
    if problems:
        raise ManifestError(problems)
    after = loaded.dump() if changes else text
    return FileMigration(rel, path, text, after, tuple(changes))


def manifest_paths(target: Path) -> Iterator[Path]:
    """``target`` itself, or the YAML files under it (hidden folders such as .git skipped)."""
    if target.is_file():
        yield target
        return
    for path in sorted(target.rglob("*")):
        rel = path.relative_to(target)
        if any(part.startswith(".") for part in rel.parts[:-1]):
            continue
        if path.suffix in MANIFEST_SUFFIXES and path.is_file():
            yield path


def migrate_paths(targets: Iterable[Path]) -> list[FileMigration]:
    """Every manifest file under ``targets``, converted in memory. Nothing is written:
    a file that cannot be read or converted is a ManifestError listing every problem."""
    results: list[FileMigration] = []
    problems: list[Problem] = []
    for target in targets:
        if not target.exists():
            raise UsageError(f"{target}: no such file or folder")
        for path in manifest_paths(target):
            shown = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                problems.append(Problem(shown, 0, "", "cannot read file as UTF-8 text"))
                continue
            try:
                results.append(migrate_text(text, path, shown))
            except ManifestError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems)
    return results


def write(migrations: Iterable[FileMigration]) -> None:
    """Replace each changed file atomically, keeping its mode."""
    from reconciler.manifests.yamledit import write_atomic

    for m in migrations:
        if m.changed:
            write_atomic(m.path, m.after.encode("utf-8"))
