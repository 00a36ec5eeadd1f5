"""jsonschema-rs (the yes/no fast path) agrees with jsonschema (the explanations),
document by document, patterns read as ECMA-262 by both."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifests.envelope import KIND_SCHEMAS
from reconciler.manifests.load import load_repository
from reconciler.manifests.schema import bundled_schema, fast_valid, validator_for
from seams.ecma import ecma_validator_class
from tests.support.examples import EXAMPLE


def example_documents() -> list[dict[str, Any]]:
    repo = load_repository(EXAMPLE)
    docs = [d.data for d in repo.base]
    for env_docs in repo.environments.values():
        docs += [d.data for d in env_docs if isinstance(d.data, dict) and "spec" in d.data]
    return [d for d in docs if d.get("kind") in KIND_SCHEMAS]


EXAMPLES = example_documents()
odd_values = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        1,
        1.0,
        -1,
        1.5,
        70000,
        "",
        "x",
        "15m",
        "15m\n",
        "ops\n",
        "#ops\n",
        "https://x\n",
        "café",
        "Bad Name",
        "http://x",
        [],
        ["a"],
        ["a", "a"],
        [1, True],
        {},
        {"a": 1},
    ]
)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(paths(doc)))
        if not where or where == ("kind",):  # the kind picks the schema: keep it
            continue
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = copy.deepcopy(draw(odd_values))
        elif action == "delete" and isinstance(parent, dict):
            del parent[where[-1]]
        elif isinstance(parent, dict):
            key = draw(st.sampled_from(["extra", "intervall", "type", "url", "text"]))
            parent[key] = copy.deepcopy(draw(odd_values))
    return doc


@pytest.mark.parametrize("doc", EXAMPLES, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_the_examples_get_the_same_answer(doc: dict[str, Any]) -> None:
    """Whole documents pass both; overlay fragments (no version, say) fail both."""
    kind = doc["kind"]
    expected = not list(validator_for(kind).iter_errors(doc))
    assert fast_valid(kind, doc) is expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=mutated())
def test_fast_check_agrees_with_jsonschema(doc: dict[str, Any]) -> None:
    kind = doc["kind"]
    expected = not list(validator_for(kind).iter_errors(doc))
    assert fast_valid(kind, doc) is expected, doc


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"type": "integer"}, 1.0, True),
        ({"type": "integer"}, True, False),
        ({"type": "number"}, False, False),
        ({"enum": [1]}, True, False),
        ({"enum": [1]}, 1.0, True),
        ({"const": False}, 0, False),
        ({"uniqueItems": True}, [1, True], True),
        ({"uniqueItems": True}, [1, 1.0], False),
        ({"pattern": "b"}, "abc", True),
        ({"pattern": "^b"}, "abc", False),
        ({"minimum": 1}, "not a number", True),
        ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"a": 1, "b": 2}, False),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"c": 1}, True),
        (
            {"properties": {"a": {"type": "string"}}, "additionalProperties": False},
            {"a": "x", "b": 1},
            False,
        ),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"Bad": 1}, False),
        ({"not": {}}, 1, False),
        ({"pattern": "^a$"}, "a\n", False),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok\n": 1}, False),
        ({"pattern": "^[0-9]$"}, "١", False),
        ({"pattern": "^\\d$"}, "١", False),
    ],
)
def test_semantics_match_json_schema(schema: dict[str, Any], value: Any, valid: bool) -> None:
    import jsonschema_rs

    assert jsonschema_rs.Draft202012Validator(schema).is_valid(value) is valid
    assert ecma_validator_class()(schema).is_valid(value) is valid


def test_what_jsonschema_rs_cannot_read_is_left_to_jsonschema() -> None:
    """YAML reads an unquoted 2025-01-01 as a date, which is no JSON value."""
    import datetime

    doc = copy.deepcopy(next(d for d in EXAMPLES if d["kind"] == "Source"))
    doc["spec"]["interval"] = datetime.date(2025, 1, 1)
    assert fast_valid("Source", doc) is False
    assert list(validator_for("Source").iter_errors(doc))
    assert isinstance(bundled_schema("Source"), dict)
