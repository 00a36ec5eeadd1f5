"""A fast yes/no check of a document against a bundled JSON Schema.

jsonschema builds a validator object for every subschema it descends into, which is
most of the time ``atlas validate`` spends on a large repository. Valid documents
are the common case, so each (ref-free) schema is compiled once into plain Python
closures that only answer "valid or not". When they say valid, that is the answer;
otherwise jsonschema runs as before and produces the complete, explained error list.

Only the keywords below are compiled; a schema using any other keyword raises
``Unsupported`` and is always validated by jsonschema. Semantics follow JSON Schema
2020-12 (booleans are not numbers; 1.0 is an integer; ``pattern`` searches).
tests/unit/test_schemacheck.py holds the two to the same answers on generated documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

# Keywords that only annotate: they never make a document invalid.
_ANNOTATIONS = frozenset(
    {"description", "title", "examples", "default", "$comment", "$schema", "$id"}
)


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not implement."""


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    # booleans are not numbers in JSON Schema, although Python's bool is an int
    "number": lambda v: not isinstance(v, bool) and isinstance(v, int | float),
    "integer": lambda v: (
        not isinstance(v, bool)
        and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))
    ),
}


def _is_type(value: Any, name: str) -> bool:
    test = _TYPES.get(name)
    if test is None:
        raise Unsupported(f"type {name!r}")
    return test(value)


def _canonical(value: Any) -> str:
    """A key equal for JSON-equal values (1 == 1.0, but true != 1)."""

    def tag(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return ["b", v]
        if isinstance(v, int | float):
            return ["n", float(v)]
        if isinstance(v, list):
            return ["a", [tag(x) for x in v]]
        if isinstance(v, dict):
            return ["o", {k: tag(x) for k, x in v.items()}]
        return ["s", v]

    return json.dumps(tag(value), sort_keys=True)


def compile_schema(schema: Any) -> Check:
    """Compile ``schema`` (with no $ref left) into a yes/no check; raises Unsupported."""
    if schema is True:
        return lambda _: True
    if schema is False:
        return lambda _: False
    if not isinstance(schema, dict):
        raise Unsupported("a schema must be an object or a boolean")
    checks: list[Check] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword in ("then", "else"):
            continue
        checks.append(_keyword(keyword, value, schema))
    if not checks:
        return lambda _: True
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(check(v) for check in checks)


def _scalar(keyword: str, value: Any, schema: dict[str, Any]) -> Check | None:
    if keyword == "type":
        names = [value] if isinstance(value, str) else list(value)
        for n in names:
            _is_type(None, n)  # unknown names raise Unsupported now, not later
        return lambda v: any(_is_type(v, n) for n in names)
    if keyword == "enum":
        if all(isinstance(x, str) for x in value):  # the usual case, without serializing
            choices = frozenset(value)
            return lambda v: isinstance(v, str) and v in choices
        allowed = {_canonical(x) for x in value}
        return lambda v: _canonical(v) in allowed
    if keyword == "const":
        if isinstance(value, str):
            return lambda v: isinstance(v, str) and v == value
        want = _canonical(value)
        return lambda v: _canonical(v) == want
    return None


def _string(keyword: str, value: Any, schema: dict[str, Any]) -> Check | None:
    if keyword == "pattern":
        rx = re.compile(value)
        return lambda v: not isinstance(v, str) or rx.search(v) is not None
    if keyword == "minLength":
        return lambda v: not isinstance(v, str) or len(v) >= value
    if keyword == "maxLength":
        return lambda v: not isinstance(v, str) or len(v) <= value
    return None


_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda x, bound: x >= bound,
    "maximum": lambda x, bound: x <= bound,
    "exclusiveMinimum": lambda x, bound: x > bound,
    "exclusiveMaximum": lambda x, bound: x < bound,
}


def _number(keyword: str, value: Any, schema: dict[str, Any]) -> Check | None:
    test = _BOUNDS.get(keyword)
    if test is None:
        return None
    return lambda v: not _is_type(v, "number") or test(v, value)


def _object(keyword: str, value: Any, schema: dict[str, Any]) -> Check | None:
    if keyword == "required":
        names = list(value)
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)
    if keyword == "properties":
        props = {name: compile_schema(sub) for name, sub in value.items()}
        return lambda v: (
            not isinstance(v, dict)
            or all(check(v[name]) for name, check in props.items() if name in v)
        )
    if keyword == "additionalProperties":
        if "patternProperties" in schema:
            raise Unsupported("patternProperties")
        known = set(schema.get("properties", {}))
        extra = compile_schema(value)
        return lambda v: (
            not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)
        )
    if keyword == "propertyNames":
        names_ok = compile_schema(value)
        return lambda v: not isinstance(v, dict) or all(names_ok(k) for k in v)
    return None


def _array(keyword: str, value: Any, schema: dict[str, Any]) -> Check | None:
    if keyword == "items":
        item = compile_schema(value)
        return lambda v: not isinstance(v, list) or all(item(x) for x in v)
    if keyword == "minItems":
        return lambda v: not isinstance(v, list) or len(v) >= value
    if keyword == "maxItems":
        return lambda v: not isinstance(v, list) or len(v) <= value
    if keyword == "uniqueItems":
        if not value:
            return lambda _: True
        return lambda v: not isinstance(v, list) or len({_canonical(x) for x in v}) == len(v)
    return None


def _combinator(keyword: str, value: Any, schema: dict[str, Any]) -> Check | None:
    if keyword in ("allOf", "anyOf", "oneOf"):
        subs = [compile_schema(s) for s in value]
        if keyword == "allOf":
            return lambda v: all(s(v) for s in subs)
        if keyword == "anyOf":
            return lambda v: any(s(v) for s in subs)
        return lambda v: sum(1 for s in subs if s(v)) == 1
    if keyword == "not":
        sub = compile_schema(value)
        return lambda v: not sub(v)
    if keyword == "if":
        cond = compile_schema(value)
        then = compile_schema(schema.get("then", True))
        otherwise = compile_schema(schema.get("else", True))
        return lambda v: then(v) if cond(v) else otherwise(v)
    return None


_FAMILIES = (_scalar, _string, _number, _object, _array, _combinator)


def _keyword(keyword: str, value: Any, schema: dict[str, Any]) -> Check:
    for family in _FAMILIES:
        check = family(keyword, value, schema)
        if check is not None:
            return check
    raise Unsupported(keyword)
