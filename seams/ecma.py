"""JSON Schema ``pattern``s as the schema means them: ECMA-262 regular expressions.

Python's ``re`` differs from ECMA-262 where it matters for validation: ``$`` also
matches before a final newline (``^[a-z]+$`` accepts ``"evil\\n"``), ``\\d`` and
``\\w`` take any Unicode digit or letter, and ``.`` matches a carriage return.
``ecma_regex`` rewrites a pattern so that ``re.search`` gives ECMA's answer for those,
and ``ecma_validator`` is jsonschema's Draft 2020-12 validator using it for
``pattern`` and ``patternProperties`` (so its explanations agree with jsonschema-rs,
which implements ECMA-262 itself). Both halves validate schemas: this is shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

# Outside a character class.
_OUTSIDE = {
    "$": r"\Z",  # the very end of the input, never before a final newline
    ".": "[^\n\r\u2028\u2029]",
}
_ESCAPES_OUTSIDE = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": "[A-Za-z0-9_]",
    "W": "[^A-Za-z0-9_]",
}
_ESCAPES_INSIDE = {"d": "0-9", "w": "A-Za-z0-9_"}


def _translate(pattern: str) -> Iterator[str]:
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            table = _ESCAPES_INSIDE if in_class else _ESCAPES_OUTSIDE
            yield table.get(nxt, ch + nxt)
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            yield ch
        elif ch == "[":
            in_class = True
            yield ch
            if pattern[i + 1 : i + 2] == "^":  # a leading ^ or ] belongs to the class
                yield "^"
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                yield "\\]"
                i += 1
        else:
            yield _OUTSIDE.get(ch, ch)
        i += 1


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` (ECMA-262) compiled so that ``.search`` answers as ECMA-262 does."""
    return re.compile("".join(_translate(pattern)))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    import jsonschema

    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if ecma_regex(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


@cache
def ecma_validator_class() -> Any:
    """jsonschema's Draft202012Validator with ECMA-262 ``pattern``s."""
    import jsonschema

    return jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator,
        {"pattern": _pattern, "patternProperties": _pattern_properties},
    )
