"""Run the ``atlas`` command line in-process, with stdin, and capture what it prints."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import pytest

from atlas.cli import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


class Atlas:
    """``atlas(*argv, stdin=b"")`` → Result; every result is kept in ``history``."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.history: list[tuple[tuple[str, ...], Result]] = []

    def __call__(self, *argv: object, stdin: bytes = b"") -> Result:
        args = tuple(str(a) for a in argv)
        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = self.capsys.readouterr()
        result = Result(code, captured.out, captured.err)
        self.history.append((args, result))
        return result
