"""Extracting a revision's archive: on Pythons with tarfile's data filter (3.11.4+) and
without it (Debian 12's 3.11.2), nothing lands outside the tree."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from reconciler.source import UnsafeTree, extract_tree

BOTH = pytest.mark.parametrize(
    "own_filter",
    [True, pytest.param(False, marks=pytest.mark.skipif(
        not hasattr(tarfile, "data_filter"), reason="this Python has no tarfile data filter"))],
    ids=["own-checks", "data-filter"],
)  # fmt: skip


def archive(*members: tuple[str, bytes | None, str | None]) -> tarfile.TarFile:
    """(name, content, link target): content None and a target make a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                data = content or b""
                info.size, info.mode = len(data), 0o664
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return tarfile.open(fileobj=buf)


@BOTH
def test_a_plain_tree_with_an_inner_link_is_extracted(tmp_path: Path, own_filter: bool) -> None:
    dest = tmp_path / "tree"
    dest.mkdir()
    tar = archive(("base/a.yaml", b"kind: Source\n", None), ("link.yaml", None, "base/a.yaml"))
    extract_tree(tar, dest, own_filter=own_filter)
    assert (dest / "link.yaml").read_text() == "kind: Source\n"
    assert (dest / "base/a.yaml").stat().st_mode & 0o022 == 0, "no group/other write"


@BOTH
@pytest.mark.parametrize(
    "member",
    [("../escape.yaml", b"x", None), ("out.yaml", None, "../../outside"),
     ("abs.yaml", None, "/etc/shadow")],
    ids=["dotdot", "link-out", "link-absolute"],
)  # fmt: skip
def test_what_would_land_outside_is_refused(
    tmp_path: Path, own_filter: bool, member: tuple[str, bytes | None, str | None]
) -> None:
    dest = tmp_path / "tree"
    dest.mkdir()
    with pytest.raises(UnsafeTree, match="revision archive"):
        extract_tree(archive(member), dest, own_filter=own_filter)
    assert not (tmp_path / "escape.yaml").exists()


@BOTH
def test_an_absolute_name_never_lands_outside(tmp_path: Path, own_filter: bool) -> None:
    """The data filter strips the leading slash; the own checks refuse the member."""
    dest = tmp_path / "tree"
    dest.mkdir()
    target = tmp_path / "absolute-target.yaml"
    try:
        extract_tree(archive((str(target), b"x", None)), dest, own_filter=own_filter)
    except UnsafeTree:
        assert own_filter
    else:
        assert (dest / str(target).lstrip("/")).exists()
    assert not target.exists()


def test_devices_are_refused_by_the_own_checks(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("dev")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar, pytest.raises(UnsafeTree, match="not a file"):
        extract_tree(tar, tmp_path, own_filter=True)
