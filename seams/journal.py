"""Log lines for the journal: syslog priority prefixes when stderr is the journal.

systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for a service whose stderr is
connected to journald; a line starting ``<N>`` there is stored with priority N
(``SyslogLevelPrefix=yes``, the default, said explicitly in Atlas's units), so
``journalctl -p err`` shows exactly the errors. Anywhere else (a terminal, a test
capturing output) lines stay as they were.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}


def stream_is_journal(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` (stderr) is the journal stream systemd named in JOURNAL_STREAM."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def prefix(level: str, journal: bool) -> str:
    """``<3>`` for "error" and so on when writing to the journal, else nothing."""
    return f"<{PRIORITY.get(level.lower(), 6)}>" if journal else ""
