"""systemd ``EnvironmentFile=`` files, written and read as one pair.

The reconciler writes each component's secrets as ``NAME="value"`` (``quote``); a
command run from a shell (``atlas alerts test``) reads the same file (``parse``) and
must get exactly what systemd hands the service. ``parse`` follows systemd's own
reader (``parse_env_file`` in systemd's env-file.c) rather than splitting lines: a
double-quoted value keeps its newlines, ``\\`` escapes only ``"  \\  $  ` `` inside
double quotes (any other backslash stays), a backslash before a newline joins the
lines, single quotes take everything literally, and a bare value ends at the line
with its trailing whitespace dropped. tests/integration/test_envfile_systemd.py
holds ``parse(quote(v))``, and systemd's reading of it, to ``v``.
"""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NEED_ESCAPE = '"\\`$'  # what a backslash escapes inside double quotes
_NEWLINE = "\n\r"
_BLANK = " \t"


class EnvFileError(ValueError):
    """A value no environment can hold (a NUL byte, or text that is not Unicode)."""


def quote(value: str) -> str:
    """``value`` double-quoted for an EnvironmentFile, read back unchanged by systemd."""
    if "\x00" in value:
        raise EnvFileError("the value contains a NUL byte, which no environment can hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EnvFileError(
            f"the value is not valid Unicode text (a lone surrogate at {exc.start})"
        ) from None
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def assignment(name: str, value: str) -> str:
    """One ``NAME="value"`` line (without its final newline)."""
    if not _NAME.match(name):
        raise EnvFileError(f"{name!r} is not a variable name: expected letters, digits and '_'")
    return f"{name}={quote(value)}"


class _Reader:
    """systemd's state machine over the whole text, one character at a time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: dict[str, str] = {}

    def _next(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def run(self) -> dict[str, str]:
        while (ch := self._next()) is not None:
            if ch in _BLANK or ch in _NEWLINE:
                continue
            if ch in "#;":
                self._comment()
            else:
                self._assignment(ch)
        return self.out

    def _comment(self) -> None:
        while (ch := self._next()) is not None:
            if ch == "\\":
                self._next()  # an escaped newline continues the comment
            elif ch in _NEWLINE:
                return

    def _assignment(self, first: str) -> None:
        key = first
        while (ch := self._next()) is not None and ch != "=":
            if ch in _NEWLINE:
                return  # a line without '=' is ignored
            key += ch
        if ch is None:
            return
        key = key.rstrip(_BLANK + _NEWLINE)
        value = self._value()
        if _NAME.match(key):
            self.out[key] = value

    def _value(self) -> str:
        parts: list[str] = []
        pending = ""  # blanks that count only if more of the value follows
        while (ch := self._next()) is not None:
            if ch in _NEWLINE:
                break
            if ch in _BLANK:
                if parts:
                    pending += ch
                continue
            parts.append(pending)
            pending = ""
            if ch == "'":
                parts.append(self._until("'"))
            elif ch == '"':
                parts.append(self._double())
            elif ch == "\\":
                nxt = self._next()
                parts.append("" if nxt is None or nxt == "\n" else nxt)
            else:
                parts.append(ch)
        return "".join(parts)

    def _until(self, end: str) -> str:
        start = self.pos
        stop = self.text.find(end, start)
        if stop < 0:
            self.pos = len(self.text)
            return self.text[start:]
        self.pos = stop + 1
        return self.text[start:stop]

    def _double(self) -> str:
        out: list[str] = []
        while (ch := self._next()) is not None and ch != '"':
            if ch != "\\":
                out.append(ch)
                continue
            nxt = self._next()
            if nxt is None:
                break
            if nxt in _NEED_ESCAPE:
                out.append(nxt)
            elif nxt != "\n":
                out.append("\\" + nxt)
        return "".join(out)


def parse(text: str) -> dict[str, str]:
    """The variables systemd reads from an EnvironmentFile's ``text``."""
    return _Reader(text).run()


def read(path: Path) -> dict[str, str]:
    """The variables of the EnvironmentFile at ``path`` (bytes decoded as they are:
    reading it as text would turn a carriage return into a newline)."""
    return parse(path.read_bytes().decode("utf-8", errors="replace"))
