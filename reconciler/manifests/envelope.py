"""The envelope of a manifest: a mapping with a known ``apiVersion``, ``kind`` and a
valid ``metadata.name``. A document without one cannot be merged or validated
further, so these problems are found first, each at its own line."""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.errors import Problem
from reconciler.manifests.load import Document
from reconciler.manifests.migrate import CURRENT as API_VERSION
from reconciler.manifests.migrate import SUPERSEDED

__all__ = ["API_VERSION", "ENVIRONMENT_ONLY_KINDS", "KIND_SCHEMAS", "envelope_problems", "show"]

KIND_SCHEMAS = {
    "Source": "source.json",
    "AlertChannel": "alertchannel.json",
    "AlertRule": "alertrule.json",
    "Environment": "environment.json",
    "Deployment": "deployment.json",
    "BackupPolicy": "backuppolicy.json",
    "Secrets": "secrets.json",
}
# Kinds that exist once per environment and only in environments/<env>/.
ENVIRONMENT_ONLY_KINDS = ("Environment", "Secrets")
# Older apiVersions we know of, and what to tell the operator about them (migrate.py).
SUPERSEDED_API_VERSIONS: dict[str, str] = dict(SUPERSEDED)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def show(value: Any) -> str:
    """A value as an error message quotes it: JSON, cut at 60 characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _api_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    api = data.get("apiVersion")
    if api is None:
        return [Problem(doc.file, doc.line, doc.ref, f"missing apiVersion: expected {API_VERSION}")]
    if api != API_VERSION:
        hint = SUPERSEDED_API_VERSIONS.get(str(api))
        file, line = doc.mark(("apiVersion",))
        message = hint or f"unknown apiVersion {api!r}: expected {API_VERSION}"
        return [Problem(file, line, doc.ref, message)]
    return []


def _kind_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    kind = data.get("kind")
    kinds = ", ".join(KIND_SCHEMAS)
    if kind is None:
        return [Problem(doc.file, doc.line, doc.ref, f"missing kind: expected one of {kinds}")]
    if kind not in KIND_SCHEMAS:
        file, line = doc.mark(("kind",))
        return [Problem(file, line, doc.ref, f"unknown kind {show(kind)}: expected one of {kinds}")]
    return []


def _name_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return [
            Problem(doc.file, doc.line, doc.ref, "missing metadata: expected a mapping with a name")
        ]
    name = meta.get("name")
    if name is None:
        file, line = doc.mark(("metadata",))
        return [Problem(file, line, doc.ref, "metadata.name is missing: expected a DNS label")]
    if not isinstance(name, str) or not _NAME.match(name):
        file, line = doc.mark(("metadata", "name"))
        return [
            Problem(
                file,
                line,
                doc.ref,
                f"invalid name {show(name)}: expected a DNS label (lowercase letters, digits "
                "and '-', starting and ending with a letter or digit, at most 63 characters)",
            )
        ]
    return []


def envelope_problems(doc: Document) -> list[Problem]:
    """Problems that make a document unusable before any merging."""
    data = doc.data
    if not isinstance(data, dict):
        what = type(data).__name__ if data is not None else "nothing"
        return [
            Problem(
                doc.file,
                doc.line,
                "",
                f"expected a mapping with apiVersion, kind, metadata and spec; got a {what}",
            )
        ]
    return [*_api_problems(doc, data), *_kind_problems(doc, data), *_name_problems(doc, data)]
