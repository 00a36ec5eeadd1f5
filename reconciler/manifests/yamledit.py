"""Round-trip editing of YAML files: comments, key order, quoting and flow style kept.

Only the commands that rewrite manifests in place use this (``atlas secrets`` and
``atlas migrate``); the reconciler reads manifests through ``load.py``. ruamel.yaml
does the round trip; this module adds what it lacks for our files: the indentation
of block sequences is guessed per file, the lines before an explicit first ``---``
and after a final ``...`` are kept verbatim, and files are replaced atomically with
their mode kept.

A file that cannot be parsed raises ``ManifestError`` with its line, so the command
line reports it like any other manifest problem.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ManifestError, Problem
from seams import fsio

_BLOCK_KEY = re.compile(r"^(?P<indent> *)(?:- +)?[^\s#][^#]*:\s*(#.*)?$")
_DOC_START = re.compile(r"^---\s*(#.*)?$")
_DOC_END = re.compile(r"^\.\.\.\s*(#.*)?$")


@dataclass
class YamlFile:
    """The documents of one YAML file, editable in place and dumpable as text."""

    path: Path
    rel: str  # how messages name the file
    text: str  # the text as read
    docs: list[Any]
    indent: tuple[int, int, int]  # mapping, sequence, offset (ruamel's YAML.indent)
    head: str = ""  # verbatim lines up to an explicit first '---'
    tail: str = ""  # verbatim lines from a final '...'

    def dump(self) -> str:
        yaml = _yaml(self.indent)
        out = io.StringIO()
        yaml.dump_all(self.docs, out)
        return self.head + out.getvalue() + self.tail

    @property
    def changed(self) -> bool:
        return self.dump() != self.text

    def save(self) -> bool:
        """Write the file atomically when its text changed; True when it was written."""
        text = self.dump()
        if text == self.text:
            return False
        write_atomic(self.path, text.encode("utf-8"))
        self.text = text
        return True


def _yaml(indent: tuple[int, int, int]) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long values (encrypted tokens, URLs)
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as the file writes them; (2, 2, 0) when it does not say."""
    mapping = offset = None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for above, below in itertools.pairwise(lines):
        if not _BLOCK_KEY.match(above):
            continue
        key_column = len(above) - len(above.lstrip(" "))
        if above.lstrip().startswith("-"):
            after_dash = above.lstrip()[1:]
            key_column += 1 + len(after_dash) - len(after_dash.lstrip(" "))
        child = len(below) - len(below.lstrip(" "))
        is_item = below.lstrip().startswith("- ") or below.strip() == "-"
        if is_item and offset is None and child >= key_column:
            offset = child - key_column
        elif not is_item and mapping is None and child > key_column:
            mapping = child - key_column
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = offset or 0
    return mapping, max(mapping, offset + 2), offset


def _split_ends(text: str) -> tuple[str, str, str]:
    """(head, body, tail): lines up to an explicit first '---' (comments and directives
    included) and from a final '...'."""
    lines = text.splitlines(keepends=True)
    head_end = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "%")):  # comments, directives
            continue
        if _DOC_START.match(line.rstrip("\n")):
            head_end = i + 1
        break
    tail_start = len(lines)
    for i in range(len(lines) - 1, head_end - 1, -1):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _DOC_END.match(lines[i].rstrip("\n")):
            tail_start = i
        break
    return (
        "".join(lines[:head_end]),
        "".join(lines[head_end:tail_start]),
        "".join(lines[tail_start:]),
    )


def parse(text: str, path: Path, rel: str) -> YamlFile:
    """Parse ``text`` for round-trip editing; ManifestError when it is not valid YAML."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    head, body, tail = _split_ends(text)
    indent = guess_indent(body)
    try:
        docs = list(_yaml(indent).load_all(body))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 + head.count("\n")) if mark is not None else 0
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        raise ManifestError([Problem(rel, line, "", f"invalid YAML: {what}")]) from exc
    except YAMLError as exc:
        raise ManifestError([Problem(rel, 0, "", "invalid YAML")]) from exc
    return YamlFile(path, rel, text, docs, indent, head, tail)


def read(path: Path, rel: str) -> YamlFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Problem(rel, 0, "", "cannot read file as UTF-8 text")]) from exc
    return parse(text, path, rel)


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically, keeping its mode (or giving it ``mode``).

    A new file gets 0666 minus the umask. Errors are ManifestErrors naming the file.
    """
    try:
        fsio.write_atomic(path, data, mode, create_parents=False)
    except FileNotFoundError as exc:
        raise ManifestError(
            [Problem(str(path), 0, "", "cannot write file: no such folder")]
        ) from exc
    except OSError as exc:
        raise ManifestError(
            [Problem(str(path), 0, "", f"cannot write file: {exc.strerror}")]
        ) from exc


def rename_key(mapping: MutableMapping[str, Any], old: str, new: str) -> bool:
    """Rename ``old`` to ``new`` in place, keeping its position and comments.

    False when ``old`` is absent; ValueError when both are present.
    """
    if old not in mapping:
        return False
    if new in mapping:
        raise ValueError(f"both {old!r} and {new!r} are set")
    keys = list(mapping)
    position = keys.index(old)
    value = mapping[old]
    comments = getattr(mapping, "ca", None)
    comment = comments.items.pop(old, None) if comments is not None else None
    insert = getattr(mapping, "insert", None)
    if insert is not None:  # a ruamel CommentedMap
        del mapping[old]
        insert(position, new, value)
        if comment is not None and comments is not None:
            comments.items[new] = comment
        return True
    rest = [(k, mapping[k]) for k in keys[position + 1 :]]
    del mapping[old]
    for k, _ in rest:
        del mapping[k]
    mapping[new] = value
    for k, v in rest:
        mapping[k] = v
    return True


def insert_key(mapping: MutableMapping[str, Any], key: str, value: Any, after: str | None) -> None:
    """Add ``key`` after ``after`` (or first when ``after`` is absent), keeping comments."""
    keys = list(mapping)
    position = keys.index(after) + 1 if after in keys else 0
    insert = getattr(mapping, "insert", None)
    if insert is not None:
        insert(position, key, value)
        return
    rest = [(k, mapping[k]) for k in keys[position:]]
    for k, _ in rest:
        del mapping[k]
    mapping[key] = value
    for k, v in rest:
        mapping[k] = v
