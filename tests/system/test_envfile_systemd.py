"""The env file pair (seams/envfile.py) against systemd itself (issue 11): what the
renderer writes, systemd hands the service unchanged, and ``parse`` reads the same.

Each example is one ``systemd-run --user --wait --pipe`` of ``env -0`` with
``EnvironmentFile=`` on a private user manager (about 0.1 s each)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas.usermanager import PrivateManager
from reconciler.render.envfiles import env_text
from seams.envfile import parse, read

pytestmark = pytest.mark.systemd

values = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
names = st.from_regex(r"ATLAS_T_[A-Z0-9_]{1,12}", fullmatch=True)


def systemd_reads(manager: PrivateManager, env_file: Path) -> dict[str, str]:
    """The variables a service started with ``EnvironmentFile=env_file`` gets."""
    done = subprocess.run(
        [
            *("systemd-run", "--user", "--wait", "--pipe", "--quiet", "--collect"),
            *("-p", f"EnvironmentFile={env_file}", "/usr/bin/env", "-0"),
        ],
        env=manager.env,
        capture_output=True,
        timeout=30,
        check=True,
    )
    out = {}
    for entry in done.stdout.split(b"\0"):
        name, _, value = entry.decode("utf-8").partition("=")
        if name.startswith(("ATLAS_T_", "K")):
            out[name] = value
    return out


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(variables=st.dictionaries(names, values, min_size=1, max_size=6))
def test_systemd_reads_back_exactly_what_was_written(
    systemd_user: PrivateManager, variables: dict[str, str]
) -> None:
    """Written by the reconciler's own renderer (header and all), read by systemd
    and by ``seams.envfile.read``."""
    env_file = systemd_user.base / "probe.env"
    env_file.write_bytes(env_text("dev", "atlas-core.service", variables.items()))
    assert systemd_reads(systemd_user, env_file) == variables
    assert read(env_file) == variables


HAND_WRITTEN = [
    "K1=plain\n",
    "K1=  spaced value  \n",
    "K1='single $quoted \\n'\n",
    'K1="a\\qb"\n',
    "K1=bare\\ escaped\\\\x\n",
    'K1="joined\\\nline"\n',
    "K1=joined\\\nbare\n",
    "# comment\\\nK1=hidden by the comment\nK2=seen\n",
    "K1\nK2=after a line without =\n",
    "  K1 =after blanks\n",
    'K1="first"K2\n',
    "K1=\"a\"'b'c\n",
    "K1=cr\rK2=x\n",
    "; semicolon comment\nK1=v\n",
    "K1=\n",
    'K1="unterminated\n',
]


@pytest.mark.parametrize("text", HAND_WRITTEN)
def test_hand_written_files_read_as_systemd_reads_them(
    systemd_user: PrivateManager, text: str
) -> None:
    env_file = systemd_user.base / "hand.env"
    env_file.write_text(text, encoding="utf-8")
    assert parse(text) == systemd_reads(systemd_user, env_file)
