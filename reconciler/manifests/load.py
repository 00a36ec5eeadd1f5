"""Load manifest files: YAML documents → plain data with the file and line of every node.

Only the safe subset of YAML is accepted (the C or Python *safe* composer, then our
own construction of plain JSON-like values), so no tag can build an object. Hostile
input is bounded: a size limit per file, a limit on files per repository, and an
alias-expansion budget so a "billion laughs" document fails in milliseconds instead
of eating memory. Duplicate keys inside a mapping, which PyYAML silently collapses
to the last one, are reported. Problems are collected, never raised one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import Problem

try:  # libyaml is much faster; both composers give the same nodes and marks
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MANIFEST_SUFFIXES = (".yaml", ".yml")

PathKey = tuple[str | int, ...]
Mark = tuple[str, int]  # (file, 1-based line)


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1024 * 1024
    max_files: int = 10_000
    # nodes visited a second time through an alias, per file
    max_alias_expansion: int = 10_000
    max_depth: int = 64


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file, as plain data plus line marks."""

    file: str  # path relative to the repository root, with '/' separators
    index: int  # position of the document in its file, from 0
    line: int
    data: Any
    marks: dict[PathKey, Mark] = field(repr=False, compare=False)

    def mark(self, path: PathKey) -> Mark:
        """The (file, line) of ``path``, or of its nearest ancestor that has a mark."""
        return nearest_mark(self.marks, path, self.marks.get((), (self.file, self.line)))

    @property
    def kind(self) -> str:
        return _str_field(self.data, "kind")

    @property
    def name(self) -> str:
        meta = self.data.get("metadata") if isinstance(self.data, dict) else None
        return _str_field(meta, "name")

    @property
    def ref(self) -> str:
        kind, name = self.kind, self.name
        if not kind:
            return ""
        return f"{kind}/{name}" if name else kind


def nearest_mark(marks: Mapping[PathKey, Mark], path: PathKey, fallback: Mark) -> Mark:
    """The mark of ``path`` or of its nearest marked ancestor (the root excluded)."""
    p = tuple(path)
    while p:
        found = marks.get(p)
        if found is not None:
            return found
        p = p[:-1]
    return fallback


def _str_field(data: Any, key: str) -> str:
    if isinstance(data, dict):
        value = data.get(key)
        if isinstance(value, str):
            return value
    return ""


class _LoadProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _scalar(node: yaml.ScalarNode, line: int) -> Any:
    if node.tag == _TIMESTAMP_TAG:
        return node.value  # keep dates as the text the author wrote
    if node.tag not in _PLAIN_TAGS:
        raise _LoadProblem(line, f"unsupported YAML tag {node.tag}")
    try:
        return _SCALAR_CONSTRUCTOR.yaml_constructors[node.tag](_SCALAR_CONSTRUCTOR, node)
    except (yaml.YAMLError, ValueError) as exc:
        raise _LoadProblem(line, f"invalid scalar {node.value!r}: {exc}") from exc


class _Builder:
    """Turns one composed node tree into plain data, recording marks."""

    def __init__(self, file: str, limits: Limits) -> None:
        self.file = file
        self.limits = limits
        self.marks: dict[PathKey, Mark] = {}
        self.seen: set[int] = set()
        self.expanded = 0

    def build(self, node: yaml.Node, path: PathKey, stack: tuple[int, ...]) -> Any:
        line = node.start_mark.line + 1
        self.marks.setdefault(path, (self.file, line))
        if node.tag == _STR_TAG and id(node) not in self.seen:  # the common case, fast
            self.seen.add(id(node))
            return node.value
        key = id(node)
        self._visit(key, line, stack)
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                raise _LoadProblem(line, f"unsupported YAML tag {node.tag}")
            return self._mapping(node, path, (*stack, key))
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise _LoadProblem(line, f"unsupported YAML tag {node.tag}")
            return [
                self.build(item, (*path, i), (*stack, key)) for i, item in enumerate(node.value)
            ]
        assert isinstance(node, yaml.ScalarNode)
        return _scalar(node, line)

    def _visit(self, key: int, line: int, stack: tuple[int, ...]) -> None:
        """Bound the work a document can ask for: depth, recursion, alias expansion."""
        if len(stack) > self.limits.max_depth:
            raise _LoadProblem(line, f"nesting deeper than {self.limits.max_depth} levels")
        if key in stack:
            raise _LoadProblem(line, "recursive alias: a node contains itself")
        if key in self.seen:  # reached again through an alias
            self.expanded += 1
            if self.expanded > self.limits.max_alias_expansion:
                raise _LoadProblem(
                    line,
                    "aliases expand to more than "
                    f"{self.limits.max_alias_expansion} nodes; refusing (alias bomb?)",
                )
        self.seen.add(key)

    def _mapping(self, node: yaml.MappingNode, path: PathKey, stack: tuple[int, ...]) -> Any:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _LoadProblem(line, "merge keys (<<) are not supported; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _LoadProblem(line, "mapping keys must be plain strings")
            key = str(key_node.value)
            if key in result:
                first = self.marks.get((*path, key), (self.file, 0))[1]
                raise _LoadProblem(line, f"duplicate key {key!r} (first defined on line {first})")
            self.marks[(*path, key)] = (self.file, line)
            result[key] = self.build(value_node, (*path, key), stack)
        return result


def load_text(
    text: str, file: str, limits: Limits | None = None
) -> tuple[list[Document], list[Problem]]:
    """Parse the YAML ``text`` of ``file`` into documents; problems instead of exceptions."""
    limits = limits or Limits()
    documents: list[Document] = []
    problems: list[Problem] = []
    loader = _Loader(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            builder = _Builder(file, limits)
            line = node.start_mark.line + 1
            try:
                data = builder.build(node, (), ())
            except _LoadProblem as exc:
                problems.append(Problem(file, exc.line, "", exc.message))
                index += 1
                continue
            if data is not None:  # an empty document between '---' lines is skipped
                documents.append(Document(file, index, line, data, builder.marks))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        problems.append(Problem(file, line, "", f"invalid YAML: {what}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(file, 0, "", f"invalid YAML: {exc}"))
    finally:
        loader.dispose()
    if not documents and not problems:
        problems.append(Problem(file, 1, "", "empty file: expected at least one manifest document"))
    return documents, problems


def load_file(
    path: Path, rel: str, limits: Limits | None = None
) -> tuple[list[Document], list[Problem]]:
    limits = limits or Limits()
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            return [], [
                Problem(rel, 0, "", f"file is {size} bytes; the limit is {limits.max_file_bytes}")
            ]
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Problem(rel, 0, "", f"cannot read file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [Problem(rel, line, "", "not valid UTF-8 text")]
    return load_text(text, rel, limits)


@dataclass(frozen=True)
class RepoDocuments:
    """Every manifest of a repository: ``base/`` and each ``environments/<env>/``."""

    root: Path
    base: list[Document]
    environments: dict[str, list[Document]]
    problems: list[Problem]


def manifest_files(directory: Path, root: Path) -> Iterator[tuple[Path, str]]:
    """YAML files under ``directory`` (sorted), as (path, path relative to ``root``)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.rglob("*")):
        if path.suffix in MANIFEST_SUFFIXES and path.is_file():
            yield path, path.relative_to(root).as_posix()


def load_repository(root: Path, limits: Limits | None = None) -> RepoDocuments:
    """Load ``base/`` and every ``environments/<env>/`` of the manifests repository at ``root``."""
    limits = limits or Limits()
    root = root.resolve()
    problems: list[Problem] = []
    if not (root / "base").is_dir() and not (root / "environments").is_dir():
        problems.append(
            Problem(
                root.as_posix(),
                0,
                "",
                "not a manifests repository: expected a base/ or environments/ folder",
            )
        )
        return RepoDocuments(root, [], {}, problems)
    counted = 0

    def load_dir(directory: Path) -> list[Document]:
        nonlocal counted
        docs: list[Document] = []
        for path, rel in manifest_files(directory, root):
            counted += 1
            if counted > limits.max_files:
                problems.append(
                    Problem(rel, 0, "", f"more than {limits.max_files} manifest files; refusing")
                )
                break
            if path.is_symlink() and not _inside(path.resolve(), root):
                problems.append(Problem(rel, 0, "", "symbolic link points outside the repository"))
                continue
            found, bad = load_file(path, rel, limits)
            docs.extend(found)
            problems.extend(bad)
        return docs

    base = load_dir(root / "base")
    environments: dict[str, list[Document]] = {}
    env_root = root / "environments"
    if env_root.is_dir():
        for env_dir in sorted(p for p in env_root.iterdir() if p.is_dir()):
            environments[env_dir.name] = load_dir(env_dir)
    return RepoDocuments(root, base, environments, problems)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True
