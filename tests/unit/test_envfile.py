"""The env file writer and reader are one pair (issue 11); tests/system/
test_envfile_systemd.py holds both to what systemd itself reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seams.envfile import EnvFileError, assignment, parse, quote


@given(st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")))
def test_what_is_written_reads_back_unchanged(value: str) -> None:
    text = "# header\n" + assignment("ATLAS_SECRET_X", value) + "\nATLAS_SECRET_Y=after\n"
    assert parse(text) == {"ATLAS_SECRET_X": value, "ATLAS_SECRET_Y": "after"}


def test_a_multi_line_value_keeps_its_lines() -> None:
    text = assignment("ATLAS_SECRET_KEY", "-----BEGIN-----\nline1\nline2\n-----END-----")
    assert parse(text + "\n") == {
        "ATLAS_SECRET_KEY": "-----BEGIN-----\nline1\nline2\n-----END-----"
    }


def test_backslash_escapes_are_systemds_not_pythons() -> None:
    """Inside double quotes only " \\ $ ` are escaped; \\n stays a backslash and an n."""
    assert parse('A="p\\"q\\\\r\\n\\$"\n') == {"A": 'p"q\\r\\n$'}


@pytest.mark.parametrize(
    ("value", "message"),
    [("a\x00b", "NUL byte"), ("\udc80", "not valid Unicode")],
)
def test_values_no_environment_can_hold_are_refused(value: str, message: str) -> None:
    with pytest.raises(EnvFileError, match=message):
        quote(value)


def test_a_bad_variable_name_is_refused() -> None:
    with pytest.raises(EnvFileError, match="not a variable name"):
        assignment("A-B", "x")


@given(
    st.dictionaries(
        st.from_regex(r"ATLAS_SECRET_[A-Z]{1,8}", fullmatch=True),
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
        max_size=4,
    )
)
def test_the_rendered_env_file_reads_back_unchanged(variables: dict[str, str]) -> None:
    """Through the reconciler's renderer: a blank line, trailing blanks or a carriage
    return inside a value survive (the unit-file tidying once dropped them)."""
    from reconciler.render.envfiles import env_text

    assert parse(env_text("dev", "atlas-core.service", variables.items()).decode()) == variables


def test_a_pem_key_with_a_blank_line_survives_rendering() -> None:
    from reconciler.render.envfiles import env_text

    pem = "-----BEGIN KEY-----\nabc  \n\ndef\r\n-----END KEY-----\n"
    assert parse(env_text("dev", "u", [("ATLAS_SECRET_KEY", pem)]).decode()) == {
        "ATLAS_SECRET_KEY": pem
    }
