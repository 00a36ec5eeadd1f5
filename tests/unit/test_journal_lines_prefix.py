"""Syslog priority prefixes: only when stderr really is the journal stream systemd
named, on every line of a multi-line record, at the record's own priority."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from atlas.logs import PriorityFormatter
from seams import journal


def test_the_stream_is_the_journal_only_when_its_device_and_inode_match(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as stream, open(tmp_path / "other", "w") as other:
        st = os.fstat(stream.fileno())
        named = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert journal.stream_is_journal(stream, named)
        assert not journal.stream_is_journal(other, named), "another file is not the journal"
        assert not journal.stream_is_journal(stream, {})
        assert not journal.stream_is_journal(stream, {"JOURNAL_STREAM": "garbage"})
        assert not journal.stream_is_journal(stream, {"JOURNAL_STREAM": "1:"})


def test_priorities_follow_the_level() -> None:
    assert [journal.prefix(lv, True) for lv in ("critical", "ERROR", "warning", "info", "debug")] == [
        "<2>", "<3>", "<4>", "<6>", "<7>"
    ]  # fmt: skip
    assert journal.prefix("error", False) == ""
    assert journal.prefix("no-such-level", True) == "<6>"


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("atlas.core", level, __file__, 1, msg, None, None)


def test_a_multi_line_error_keeps_its_priority_on_every_line() -> None:
    fmt = PriorityFormatter("%(levelname)s %(message)s", journal_stream=True)
    lines = fmt.format(record(logging.ERROR, "boom\nTraceback line\n  more")).splitlines()
    assert lines == ["<3>ERROR boom", "<3>Traceback line", "<3>  more"]
    assert fmt.format(record(logging.WARNING, "careful")) == "<4>WARNING careful"
    plain = PriorityFormatter("%(levelname)s %(message)s", journal_stream=False)
    assert plain.format(record(logging.ERROR, "boom")) == "ERROR boom"
