"""Overlays: a document in ``environments/<env>/`` with the kind and name of one in
``base/`` is merged over it — maps merge key by key, deeply; anything else (lists
included) is replaced. A ``Manifest`` is the merged result, remembering the file and
line every part came from, so a problem in merged data points at the line that set it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import Problem
from reconciler.manifests.envelope import envelope_problems
from reconciler.manifests.load import Document, Mark, PathKey, nearest_mark


@dataclass(frozen=True)
class Manifest:
    """One manifest after overlays: the merged data and where each part came from."""

    kind: str
    name: str
    data: dict[str, Any]
    file: str  # where the document was first defined (the base file for an overlay)
    line: int
    marks: dict[PathKey, Mark] = field(repr=False, compare=False)
    overlaid_by: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    def mark(self, path: PathKey) -> Mark:
        return nearest_mark(self.marks, path, (self.file, self.line))

    def problem(self, path: PathKey, message: str) -> Problem:
        file, line = self.mark(path)
        return Problem(file, line, self.ref, message)


def field_name(path: Iterable[str | int]) -> str:
    """``("spec", "channels", 0)`` → ``spec.channels[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def deep_merge(base: Any, overlay: Any) -> Any:
    """Maps merge key by key, recursively; anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return overlay


def manifest_of(doc: Document) -> Manifest:
    return Manifest(doc.kind, doc.name, doc.data, doc.file, doc.line, dict(doc.marks))


def overlay(base: Manifest, doc: Document) -> Manifest:
    marks = dict(base.marks)
    marks.update(doc.marks)
    return Manifest(
        base.kind,
        base.name,
        deep_merge(base.data, doc.data),
        base.file,
        base.line,
        marks,
        (*base.overlaid_by, doc.file),
    )


def collect(
    docs: list[Document], problems: list[Problem], where: str
) -> dict[tuple[str, str], Manifest]:
    """The documents of one folder by (kind, name); bad envelopes and duplicates are
    added to ``problems`` and left out."""
    found: dict[tuple[str, str], Manifest] = {}
    for doc in docs:
        bad = envelope_problems(doc)
        if bad:
            problems.extend(bad)
            continue
        key = (doc.kind, doc.name)
        if key in found:
            first = found[key]
            problems.append(
                Problem(
                    doc.file,
                    doc.line,
                    doc.ref,
                    f"duplicate {doc.ref} in {where} (first defined at {first.file}:{first.line})",
                )
            )
            continue
        found[key] = manifest_of(doc)
    return found
