"""What a unit file change needs, case by case (after NixOS's compare_units tests)."""

from __future__ import annotations

import pytest

from reconciler.host.unitfile import changed_keys, classify, parse

BASE = """\
[Unit]
Description=Atlas API
Documentation=https://atlas.invalid/docs
After=network-online.target
X-Restart-Triggers=aaaa
X-Reload-Triggers=rrrr

[Service]
ExecStartPre=/bin/true one
ExecStartPre=/bin/true two
ExecStart=/usr/bin/python3 -m atlas api
Restart=on-failure

[Install]
WantedBy=default.target
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new)


CASES = [
    # (case, new text, expected change)
    ("identical", BASE, "none"),
    ("a comment added", "# rendered by Atlas\n" + BASE, "none"),
    ("a ; comment and blank lines", edit("[Service]\n", "[Service]\n; note\n\n"), "none"),
    ("Description changed", edit("Description=Atlas API", "Description=The API"), "none"),
    ("Documentation changed", edit("docs", "manual"), "none"),
    ("spaces around =", edit("Restart=on-failure", "Restart = on-failure"), "none"),
    (  # systemd replaces the backslash by a space
        "a line continued with \\",
        edit("ExecStart=/usr/bin/python3 -m atlas api", "ExecStart=/usr/bin/python3\\\n  -m atlas api"),
        "none",
    ),
    (
        "different keys reordered (systemd does not care)",
        edit("ExecStart=/usr/bin/python3 -m atlas api\nRestart=on-failure",
             "Restart=on-failure\nExecStart=/usr/bin/python3 -m atlas api"),
        "none",
    ),
    ("[Install] changed", edit("WantedBy=default.target", "WantedBy=multi-user.target"), "reenable"),
    ("[Install] removed", BASE.split("[Install]", maxsplit=1)[0], "reenable"),
    ("X-Reload-Triggers changed", edit("X-Reload-Triggers=rrrr", "X-Reload-Triggers=ssss"), "reload"),
    (
        "reload trigger and Description changed",
        edit("Description=Atlas API", "Description=x", edit("rrrr", "ssss")),
        "reload",
    ),
    ("X-Restart-Triggers changed", edit("X-Restart-Triggers=aaaa", "X-Restart-Triggers=bbbb"), "restart"),
    ("ExecStart changed", edit("atlas api", "atlas api --instance 1"), "restart"),
    (
        "one key's values reordered (order matters)",
        edit("ExecStartPre=/bin/true one\nExecStartPre=/bin/true two",
             "ExecStartPre=/bin/true two\nExecStartPre=/bin/true one"),
        "restart",
    ),
    ("a key added", edit("Restart=on-failure", "Restart=on-failure\nMemoryMax=1G"), "restart"),
    ("a section added", BASE + "\n[Timer]\nOnCalendar=hourly\n", "restart"),
    ("reload and restart triggers changed", edit("rrrr", "ssss", edit("aaaa", "bbbb")), "restart"),
    (
        "[Install] and [Service] changed",
        edit("default.target", "multi-user.target", edit("on-failure", "always")),
        "restart",
    ),
    ("After= changed", edit("After=network-online.target", "After=atlas-core.service"), "restart"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classify(case: str, new: str, expected: str) -> None:
    assert classify(BASE, new) == expected, case


@pytest.mark.parametrize(("case", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classify_is_symmetric(case: str, new: str, expected: str) -> None:
    assert classify(new, BASE) == expected, case


def test_parse_keeps_sections_keys_and_repeated_values() -> None:
    parsed = parse(BASE)
    assert list(parsed) == ["Unit", "Service", "Install"]
    assert [v for k, v in parsed["Service"] if k == "ExecStartPre"] == [
        "/bin/true one",
        "/bin/true two",
    ]


def test_changed_keys_name_section_and_key() -> None:
    new = edit("rrrr", "ssss", edit("on-failure", "always"))
    assert changed_keys(BASE, new) == ["Service.Restart", "Unit.X-Reload-Triggers"]
    assert changed_keys(BASE, BASE) == []
