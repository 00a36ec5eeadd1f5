"""Fernet per value, name binding, rotation, key files, digests: reconciler/secrets/keys.py
and the pure operations of reconciler/secrets/ops.py."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import SecretsError
from reconciler.secrets.keys import (
    KeyRing,
    fingerprint,
    format_keys,
    generate_key,
    load_key_file,
    parse_keys,
    token_time,
    write_key_file,
)
from reconciler.secrets.ops import (
    ADDED,
    CHANGED,
    REMOVED,
    UNCHANGED,
    apply_edit,
    check_key,
    decrypt_all,
    edit_buffer,
    entries,
    parse_edit_buffer,
    primary_only,
    rotate,
    set_value,
    textconv,
    value_from_input,
)

VALUE = "s3cr3t-SMTP-value-7fQ9"


def ring(*keys: str) -> KeyRing:
    return KeyRing(tuple(k.encode() for k in keys), "test.key")


@pytest.fixture
def keys() -> KeyRing:
    return ring(generate_key())


def test_round_trip_and_redacted_reprs(keys: KeyRing) -> None:
    token = keys.encrypt("smtp_password", VALUE)
    value = keys.decrypt("staging", "smtp_password", token)
    assert value.reveal() == VALUE
    assert VALUE not in repr(value) and VALUE not in str(value)
    assert VALUE not in token
    assert keys.keys[0].decode() not in repr(keys), "a KeyRing must never show its keys"


def test_a_value_copied_under_another_name_is_refused(keys: KeyRing) -> None:
    token = keys.encrypt("smtp_password", VALUE)
    with pytest.raises(SecretsError) as err:
        keys.decrypt("staging", "slack_webhook_url", token)
    message = str(err.value)
    assert "environment 'staging'" in message and "secret 'slack_webhook_url'" in message
    assert "encrypted for secret 'smtp_password'" in message
    assert VALUE not in message


def test_a_tampered_token_is_refused(keys: KeyRing) -> None:
    raw = bytearray(base64.urlsafe_b64decode(keys.encrypt("smtp_password", VALUE)))
    raw[40] ^= 0x01  # one bit of the ciphertext
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SecretsError, match=r"secret 'smtp_password'.*altered") as err:
        keys.decrypt("staging", "smtp_password", tampered)
    assert VALUE not in str(err.value)


@pytest.mark.parametrize("cut", [1, 10, 40, 100])
def test_a_truncated_token_is_refused_as_truncated(keys: KeyRing, cut: int) -> None:
    token = keys.encrypt("smtp_password", VALUE)
    with pytest.raises(SecretsError, match="corrupted or truncated") as err:
        keys.decrypt("staging", "smtp_password", token[:-cut])
    assert "environment 'staging'" in str(err.value)


@pytest.mark.parametrize("garbage", ["", "not a token", "gAAAA" + "!" * 80, "x" * 100])
def test_garbage_is_refused_as_corrupted(keys: KeyRing, garbage: str) -> None:
    with pytest.raises(SecretsError, match="corrupted or truncated"):
        keys.decrypt("staging", "smtp_password", garbage)


def test_a_wrong_key_is_refused(keys: KeyRing) -> None:
    token = keys.encrypt("smtp_password", VALUE)
    other = ring(generate_key())
    with pytest.raises(SecretsError, match=r"'staging'.*'smtp_password'.*wrong"):
        other.decrypt("staging", "smtp_password", token)


def test_rotation_keeps_every_value_the_set_time_and_the_digests(keys: KeyRing) -> None:
    values = {f"name_{i}": f"value-number-{i}-xyz" for i in range(5)}
    tokens = {n: keys.encrypt(n, v) for n, v in values.items()}
    digests = {n: v.digest for n, v in decrypt_all(keys, "prod", tokens).items()}
    new_ring, new_tokens = rotate(keys, "prod", tokens)
    assert new_ring.keys[1:] == keys.keys and new_ring.keys[0] not in keys.keys
    assert set(new_tokens) == set(tokens)
    for name, token in new_tokens.items():
        assert token != tokens[name]
        assert new_ring.decrypt("prod", name, token).reveal() == values[name]
        assert token_time(token) == token_time(tokens[name]), "rotation keeps when it was set"
    # the new primary alone reads everything: the old key can go
    single = primary_only(new_ring, "prod", new_tokens)
    assert single.keys == new_ring.keys[:1]
    reread = decrypt_all(single, "prod", new_tokens)
    assert {n: v.reveal() for n, v in reread.items()} == values
    assert {n: v.digest for n, v in reread.items()} == digests, "digests survive rotate + drop"
    # … and through a key file written and read again
    stored = parse_keys(format_keys(single), "stored")
    assert {n: v.digest for n, v in decrypt_all(stored, "prod", new_tokens).items()} == digests


def test_dropping_the_old_key_is_refused_while_a_token_needs_it(keys: KeyRing) -> None:
    tokens = {"a_secret": keys.encrypt("a_secret", "first-value-1234")}
    new_ring, new_tokens = rotate(keys, "prod", tokens)
    new_tokens["b_secret"] = keys.encrypt("b_secret", "second-value-5678")  # old key only
    with pytest.raises(SecretsError, match=r"secret 'b_secret'.*older key.*rotate prod"):
        primary_only(new_ring, "prod", new_tokens)


def test_rotation_stops_before_anything_when_a_token_is_broken(keys: KeyRing) -> None:
    tokens = {"good": keys.encrypt("good", "good-value-123"), "bad": "gAAAAAtruncated"}
    with pytest.raises(SecretsError, match="secret 'bad'"):
        rotate(keys, "prod", tokens)


def test_digests_are_keyed_not_plaintext_hashes(keys: KeyRing) -> None:
    digest = keys.digest("smtp_password", VALUE)
    other = ring(generate_key()).digest("smtp_password", VALUE)
    assert digest.startswith("hmac-sha256:") and digest != other
    for plain in (VALUE, "smtp_password\x00" + VALUE):
        assert hashlib.sha256(plain.encode()).hexdigest()[:32] not in digest


def test_key_file_mode_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_key_file(path, [generate_key()])
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_key_file(path).keys
    for mode in (0o640, 0o604, 0o620, 0o644):
        os.chmod(path, mode)
        with pytest.raises(SecretsError, match=f"readable by others.*{mode:04o}.*chmod 600"):
            load_key_file(path)


def test_key_file_errors_never_show_key_material(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    secret_line = "this-is-not-a-key-but-private"
    path.write_text(f"# comment\n{generate_key()}\n{secret_line}\n")
    os.chmod(path, 0o600)
    with pytest.raises(SecretsError, match=r"k.key:3: not a Fernet key") as err:
        load_key_file(path)
    assert secret_line not in str(err.value)
    with pytest.raises(SecretsError, match="does not exist"):
        load_key_file(tmp_path / "missing.key")


def test_token_time_and_fingerprint(keys: KeyRing) -> None:
    before = int(time.time())
    token = keys.encrypt("n", "some-value-here")
    assert before - 1 <= (token_time(token) or 0) <= int(time.time()) + 1
    assert token_time(token[:-5]) is None
    assert fingerprint(token) != fingerprint(keys.encrypt("n", "some-value-here"))
    [entry] = entries({"n": token})
    assert entry.as_dict()["valid"] is True and entry.fingerprint == fingerprint(token)


def test_check_key_refuses_a_key_that_opens_nothing(keys: KeyRing) -> None:
    tokens = {n: keys.encrypt(n, f"value-of-{n}") for n in ("a_one", "b_two")}
    with pytest.raises(SecretsError, match=r"decrypt none of its secrets \(a_one, b_two\)"):
        check_key(ring(generate_key()), "prod", tokens)
    # one broken token among readable ones does not block repairing it
    tokens["c_broken"] = tokens["a_one"][:-10]
    tokens["d_swapped"] = tokens["a_one"]
    assert check_key(keys, "prod", tokens) == ["c_broken", "d_swapped"]
    assert check_key(keys, "prod", {}) == []


def test_set_value_keeps_the_token_of_an_unchanged_value(keys: KeyRing) -> None:
    tokens = {"smtp_password": keys.encrypt("smtp_password", VALUE)}
    assert set_value(keys, "prod", tokens, "smtp_password", VALUE) == (None, UNCHANGED)
    token, what = set_value(keys, "prod", tokens, "smtp_password", VALUE + "2")
    assert what == CHANGED and token is not None
    assert set_value(keys, "prod", tokens, "new_one", "another-value")[1] == ADDED
    with pytest.raises(SecretsError, match="not a secret name"):
        set_value(keys, "prod", tokens, "bad-name", "whatever-value")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"abc-value\n", "abc-value"), (b"abc-value\r\n", "abc-value"), (b"a\nb\n\n", "a\nb\n")],
)
def test_value_from_stdin_drops_one_trailing_newline(raw: bytes, expected: str) -> None:
    assert value_from_input("prod", "n", raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"", "empty"), (b"\n", "empty"), (b"a\x00b", "NUL"), (b"\xff\xfe", "not UTF-8")],
)
def test_bad_values_from_stdin_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(SecretsError, match=rf"environment 'prod': secret 'n'.*{message}"):
        value_from_input("prod", "n", raw)


text_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), text_values))
def test_the_edit_buffer_reads_back_every_value_exactly(values: dict[str, str]) -> None:
    keys = ring(generate_key())
    decrypted = {n: keys.decrypt("e", n, keys.encrypt(n, v)) for n, v in values.items()}
    buffer = edit_buffer("e", "environments/e/secrets.yaml", decrypted)
    assert parse_edit_buffer("e", buffer) == values


def test_edit_buffer_values_are_text_even_when_yaml_would_guess_otherwise() -> None:
    text = "a_bool: yes\nb_null: ~\nc_num: 0012\nd_date: 2024-01-01\ne_block: |\n  x\n  y\n"
    assert parse_edit_buffer("e", text) == {
        "a_bool": "yes",
        "b_null": "~",
        "c_num": "0012",
        "d_date": "2024-01-01",
        "e_block": "x\ny\n",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("good_name: ok\n: hunter2-secret-part\n", "line 2"),
        ("p@ss hunter2-secret-part: x\n", "line 1: not a secret name"),
        ("a_name: [hunter2-secret-part]\n", "line 1: expected a text value"),
        ("a_name: x\na_name: hunter2-secret-part\n", "line 2: set twice"),
        ('a_name: "hunter2-secret-part\n', "not valid YAML"),
        ("hunter2-secret-part\n", "line 1: expected `name: value` lines"),
    ],
)
def test_edit_buffer_errors_give_lines_never_content(text: str, message: str) -> None:
    with pytest.raises(SecretsError, match=message) as err:
        parse_edit_buffer("prod", text)
    assert "hunter2" not in str(err.value)
    assert "nothing was changed" in str(err.value)


def test_apply_edit_reports_added_changed_removed(keys: KeyRing) -> None:
    before = {
        n: keys.decrypt("e", n, keys.encrypt(n, v)) for n, v in {"a": "1aaaa", "b": "2bbbb"}.items()
    }
    result = apply_edit(keys, "e", before, {"a": "1aaaa", "b": "changed", "c": "new-one"})
    assert result.changes == (("b", CHANGED), ("c", ADDED))
    assert set(result.write) == {"b", "c"} and result.remove == ()
    result = apply_edit(keys, "e", before, {"a": "1aaaa"})
    assert result.changes == (("b", REMOVED),) and result.remove == ("b",)


def test_textconv_shows_names_and_fingerprints_not_tokens(keys: KeyRing) -> None:
    token = keys.encrypt("smtp_password", VALUE)
    text = (
        "# a comment\napiVersion: atlas/v1\nkind: Secrets\nmetadata: {name: prod-secrets}\n"
        f"spec:\n  data:\n    smtp_password: {token}\n    broken: gAAAAAxyz\n"
    )
    shown = textconv(text, "secrets.yaml")
    assert "Secrets/prod-secrets" in shown
    assert f"smtp_password: set {time.strftime('%Y-%m-%d', time.gmtime())}" in shown
    assert f"fingerprint {fingerprint(token)}" in shown
    assert "broken: INVALID TOKEN" in shown
    assert token not in shown
    assert textconv("a: [unclosed\n", "x.yaml").startswith("# not a readable manifest file")
