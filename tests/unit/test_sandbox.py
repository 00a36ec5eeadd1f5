"""Which folders a sandboxed unit is given, and how (reconciler.render.sandbox)."""

from __future__ import annotations

import pytest

from reconciler.render.sandbox import Access, access, hidden_by_private_tmp


@pytest.mark.parametrize(
    ("path", "hidden"),
    [
        ("/tmp", True),
        ("/tmp/x/atlas", True),
        ("/var/tmp/venv", True),
        ("/tmpfoo", False),
        ("/var/tmpx/y", False),
        ("/var/lib/atlas", False),
        ("/home/op/.config/atlas", False),
    ],
)
def test_what_private_tmp_hides(path: str, hidden: bool) -> None:
    assert hidden_by_private_tmp(path) is hidden


def test_hidden_folders_are_bound_and_the_rest_listed() -> None:
    got = access(
        writes=["/home/op/.local/state/atlas/data", "/tmp/s/atlas/data"],
        reads=["/tmp/c/atlas", "/etc/atlas", "/tmp/s/atlas/data"],
    )
    assert got == Access(
        read_write=("/home/op/.local/state/atlas/data",),
        bind=("/tmp/s/atlas/data",),
        bind_read_only=("/tmp/c/atlas",),  # a folder written is not bound twice
    )


def test_nothing_needed_gives_nothing() -> None:
    assert access(writes=[], reads=["/etc/atlas"]).values() == {
        "read_write": [],
        "bind": [],
        "bind_read_only": [],
    }
