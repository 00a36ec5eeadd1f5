"""JSON Schemas of the manifest kinds (``schemas/v1/``): validation, explained, and
the defaults the schemas document.

Validation runs jsonschema-rs first (a yes/no answer in microseconds: valid documents
are the common case) and jsonschema only for a document that fails it, turning each
of its errors into a Problem at the line of the offending value that says what was
expected (from the schema's ``description``). Both read ``pattern`` as ECMA-262, as
JSON Schema defines it (``seams.ecma``): ``$`` is the end of the value, so a name
with a trailing newline is refused by both. tests/unit/test_schemacheck.py holds the
two to the same answers on generated documents.

``Values`` reads a manifest's spec with those defaults: the schema is the one place
a default is written (editors show it through yaml-language-server, and the build
stage applies it), so no default is repeated in code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from reconciler.errors import Problem
from reconciler.manifests.envelope import KIND_SCHEMAS, show
from reconciler.manifests.load import PathKey
from reconciler.manifests.overlay import Manifest, field_name
from seams.ecma import ecma_validator_class
from seams.resources import MANIFEST_SCHEMA_DIR

if TYPE_CHECKING:  # imported when a document fails the fast check (see validator_for)
    import jsonschema

_PLAIN_KEYWORDS = frozenset(
    {
        "type",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "const",
    }
)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace ``$ref``s to common.json definitions by the definitions themselves.

    The schemas keep their refs for editors; validating against a bundled copy
    spares jsonschema a reference lookup per field (more than half its time).
    A field's own keywords override the definition's, except ``description``: the
    definition's says what is expected, which is what an error message needs.
    """
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.split("#")[0] in ("", "common.json") and "/$defs/" in ref:
        merged = dict(_inline(defs[ref.rsplit("/", 1)[1]], defs))
        for key, value in node.items():
            if key != "$ref" and not (key == "description" and "description" in merged):
                merged[key] = _inline(value, defs)
        return merged
    return {k: _inline(v, defs) for k, v in node.items()}


@cache
def bundled_schema(kind: str) -> dict[str, Any]:
    """The kind's schema with every reference to common.json inlined."""
    common = json.loads((MANIFEST_SCHEMA_DIR / "common.json").read_text(encoding="utf-8"))
    schema = json.loads((MANIFEST_SCHEMA_DIR / KIND_SCHEMAS[kind]).read_text(encoding="utf-8"))
    inlined: dict[str, Any] = _inline(schema, common["$defs"])
    return inlined


@cache
def validator_for(kind: str) -> jsonschema.protocols.Validator:
    validator: jsonschema.protocols.Validator = ecma_validator_class()(bundled_schema(kind))
    return validator


@cache
def _fast_validator(kind: str) -> Any:
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(bundled_schema(kind))


def fast_valid(kind: str, data: Any) -> bool:
    """jsonschema-rs's yes/no; False also for what it cannot read (a YAML date, say),
    which leaves the answer to jsonschema."""
    try:
        return bool(_fast_validator(kind).is_valid(data))
    except (ValueError, TypeError, OverflowError):
        return False


# --------------------------------------------------------------------------- problems


def schema_problems(manifest: Manifest) -> list[Problem]:
    if fast_valid(manifest.kind, manifest.data):
        return []  # valid: no need for jsonschema's slower, explaining walk
    problems = []
    for error in validator_for(manifest.kind).iter_errors(manifest.data):
        problems.extend(_explain(manifest, error))
    return problems


def _expected(error: jsonschema.ValidationError) -> str:
    """What the failing (sub)schema asks for, from its description."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    desc = schema.get("description")
    return desc if isinstance(desc, str) else f"a value valid for {error.validator}"


def _enum_hint(instance: Any, options: list[Any]) -> str:
    if isinstance(instance, bool) and {"no", "yes", "on", "off"} & set(options):
        return " (YAML reads a bare yes/no/on/off as true/false: quote it)"
    if isinstance(instance, str):
        close = [o for o in options if isinstance(o, str) and o.startswith(instance.lower())]
        if len(close) == 1 and close[0] != instance:
            return f" (did you mean {close[0]}?)"
    return ""


@dataclass(frozen=True)
class _Error:
    """One jsonschema error, with its values as plain JSON (jsonschema types them loosely)."""

    manifest: Manifest
    error: jsonschema.ValidationError
    path: PathKey
    schema: Any
    value: Any  # the failing keyword's value in the schema
    instance: Any

    @property
    def where(self) -> str:
        return field_name(self.path)

    def problem(self, message: str, path: PathKey | None = None) -> Problem:
        return self.manifest.problem(self.path if path is None else path, message)


def _additional(e: _Error) -> list[Problem] | None:
    if not isinstance(e.instance, dict):
        return None
    allowed = sorted(e.schema.get("properties", {}))
    return [
        e.problem(
            f"{e.where}: unknown field {key!r}; expected one of: {', '.join(allowed)}",
            (*e.path, key),
        )
        for key in sorted(k for k in e.instance if k not in allowed)
    ]


def _required(e: _Error) -> list[Problem] | None:
    missing = [k for k in e.value if k not in e.instance]
    return [e.problem(f"{e.where}: missing required field {k!r}") for k in missing]


def _enum(e: _Error) -> list[Problem] | None:
    options = ", ".join(str(o) for o in e.value)
    message = f"{e.where}: expected one of {options}; got {show(e.instance)}"
    return [e.problem(message + _enum_hint(e.instance, e.value))]


def _not(e: _Error) -> list[Problem] | None:
    if e.value != {}:
        return None
    spec_type = e.manifest.spec.get("type")
    return [e.problem(f"{e.where}: field {e.path[-1]!r} does not apply to type {spec_type!r}")]


def _one_of(e: _Error) -> list[Problem] | None:
    if not all(isinstance(s, dict) and set(s) == {"required"} for s in e.value):
        return None
    names = " or ".join(s["required"][0] for s in e.value)
    return [e.problem(f"{e.where}: expected exactly one of {names}")]


def _property_names(e: _Error) -> list[Problem] | None:
    bad = e.instance if isinstance(e.instance, str) else None
    return [e.problem(f"{e.where}: invalid key {show(bad)}: expected {_expected(e.error)}")]


def _plain(e: _Error) -> list[Problem] | None:
    return [e.problem(f"{e.where}: expected {_expected(e.error)}; got {show(e.instance)}")]


_EXPLAIN: dict[str, Callable[[_Error], list[Problem] | None]] = {
    "additionalProperties": _additional,
    "required": _required,
    "enum": _enum,
    "not": _not,
    "oneOf": _one_of,
    "propertyNames": _property_names,
    **dict.fromkeys(_PLAIN_KEYWORDS, _plain),
}


def _explain(manifest: Manifest, error: jsonschema.ValidationError) -> list[Problem]:
    path: PathKey = tuple(error.absolute_path)
    e = _Error(manifest, error, path, error.schema, error.validator_value, error.instance)
    explain = _EXPLAIN.get(str(error.validator))
    found = explain(e) if explain is not None else None
    return found if found is not None else [e.problem(f"{e.where}: {error.message}")]


# --------------------------------------------------------------------------- defaults


def _collect_defaults(node: Any, path: str, out: dict[str, Any]) -> None:
    if not isinstance(node, dict):
        return
    if "default" in node and path:
        out[path] = node["default"]
    for key, sub in node.get("properties", {}).items():
        _collect_defaults(sub, f"{path}.{key}" if path else key, out)
    items = node.get("items")
    if isinstance(items, dict):
        _collect_defaults(items, f"{path}.*", out)


@cache
def defaults(kind: str) -> dict[str, Any]:
    """Every default the kind's schema documents, by dotted path (``spec.api.port``;
    ``*`` stands for the items of a list)."""
    out: dict[str, Any] = {}
    _collect_defaults(bundled_schema(kind), "", out)
    return out


def default_of(kind: str, path: str) -> Any:
    try:
        return defaults(kind)[path]
    except KeyError:
        raise KeyError(f"schemas/v1/{KIND_SCHEMAS[kind]} documents no default for {path}") from None


class Values:
    """A block of a manifest (its ``spec`` by default) read with the schema's defaults.

    ``values("api.port")`` is the value set in the manifest, else the schema's
    default (a KeyError names a field that has neither: a bug, not bad input);
    ``values.get("api.userAgent")`` is the value set, or None.
    """

    def __init__(self, kind: str, data: Any, prefix: str = "spec") -> None:
        self.kind = kind
        self.data = data if isinstance(data, dict) else {}
        self.prefix = prefix

    def _lookup(self, dotted: str) -> tuple[bool, Any]:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
        return True, node

    def __call__(self, dotted: str) -> Any:
        found, value = self._lookup(dotted)
        return value if found else default_of(self.kind, f"{self.prefix}.{dotted}")

    def get(self, dotted: str) -> Any:
        return self._lookup(dotted)[1]

    def has(self, dotted: str) -> bool:
        return self._lookup(dotted)[0]

    def block(self, dotted: str) -> Values:
        """A nested block (absent: empty, so its fields take their defaults)."""
        return Values(self.kind, self.get(dotted), f"{self.prefix}.{dotted}")

    def item(self, dotted: str, data: Any) -> Values:
        """One item of the list at ``dotted`` (its defaults are the schema's ``items``)."""
        return Values(self.kind, data, f"{self.prefix}.{dotted}.*")

    def with_defaults(self) -> dict[str, Any]:
        """This block's fields: every default of its direct fields, then what is set."""
        start = f"{self.prefix}."
        out = {
            key[len(start) :]: value
            for key, value in defaults(self.kind).items()
            if key.startswith(start) and "." not in key[len(start) :]
        }
        out.update(self.data)
        return out
