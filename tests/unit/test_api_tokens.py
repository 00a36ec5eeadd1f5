"""API tokens keep keyed digests only, and compare them in constant time."""

from __future__ import annotations

import hmac

import pytest

from atlas.api import auth
from atlas.api.auth import TokenConfig, Tokens, presented_token
from atlas.errors import ConfigError

VALUE = "tok-5b1f0c9e2d7a4836"


def _everything_held(obj: object) -> bytes:
    """Every attribute value reachable from ``obj`` (one level into its tuples)."""
    out = []
    for value in vars(obj).values():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            out.append(repr(vars(item)) if hasattr(item, "__dict__") else repr(item))
            if hasattr(item, "__dataclass_fields__"):
                out.extend(repr(getattr(item, f)) for f in item.__dataclass_fields__)
    return "".join(out).encode()


def test_plain_values_are_never_stored() -> None:
    tokens = Tokens({"reader": (("read",), VALUE)}, protect_metrics=False)
    held = _everything_held(tokens)
    assert VALUE.encode() not in held
    assert VALUE.encode().hex().encode() not in held
    assert tokens.match(VALUE.encode()) is not None


def test_the_digest_key_is_random_per_process() -> None:
    a = Tokens({"r": (("read",), VALUE)}, False)
    b = Tokens({"r": (("read",), VALUE)}, False)
    assert a._known[0].digest != b._known[0].digest


def test_every_configured_digest_is_compared_with_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    tokens = Tokens({"a": (("read",), VALUE), "b": (("read",), VALUE + "x")}, False)
    found = tokens.match(VALUE.encode())
    assert found is not None and found.name == "a"
    assert len(calls) == 2  # no early exit on the first match
    assert all(VALUE.encode() not in a + b for a, b in calls)


def test_headers_carry_the_token() -> None:
    assert presented_token([(b"authorization", b"Bearer abc")]) == b"abc"
    assert presented_token([(b"authorization", b"bearer  abc ")]) == b"abc"
    assert presented_token([(b"x-auth-token", b"abc")]) == b"abc"
    assert presented_token([(b"authorization", b"Basic abc")]) is None
    assert presented_token([]) is None


def test_scopes_of_routes() -> None:
    open_metrics = Tokens({"r": (("read",), VALUE)}, protect_metrics=False)
    assert open_metrics.needed_scope("/healthz") is None
    assert open_metrics.needed_scope("/readyz") is None
    assert open_metrics.needed_scope("/metrics") is None
    assert open_metrics.needed_scope("/v1/items") == "read"
    assert Tokens({}, protect_metrics=True).needed_scope("/metrics") == "metrics"


def test_a_token_without_its_env_variable_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"ATLAS_SECRET_X.*not set"):
        Tokens.from_env((TokenConfig("reader", ("read",), "ATLAS_SECRET_X"),), False, {})
