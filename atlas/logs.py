"""Logging for the platform's services: one line per record on stderr (journald
adds time and unit), level from the rendered config. Under systemd (stderr is the
journal, ``seams.journal``) each line starts with its syslog priority (``<3>`` for
errors), so ``journalctl -p err`` shows the errors and only them."""

from __future__ import annotations

import logging
import sys

from seams import journal

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class PriorityFormatter(logging.Formatter):
    """One line per record; ``<N>`` in front when the stream is the journal. A
    multi-line message (a traceback) keeps its priority on every line."""

    def __init__(self, fmt: str, journal_stream: bool) -> None:
        super().__init__(fmt)
        self.journal_stream = journal_stream

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        mark = journal.prefix(record.levelname, self.journal_stream)
        return "\n".join(mark + line for line in text.splitlines()) if mark else text


def setup(level: str, component: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        PriorityFormatter(
            f"%(levelname)s atlas-{component} %(name)s: %(message)s",
            journal.stream_is_journal(sys.stderr),
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # httpx and httpcore log every request URL at INFO; a URL can carry a secret
    # (Slack and pager webhooks), so they speak only of warnings and errors.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return logging.getLogger(f"atlas.{component}")
