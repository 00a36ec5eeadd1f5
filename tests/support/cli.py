"""Run the ``atlas`` command line in-process, with stdin, and capture what it prints."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass

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
    """``atlas(*argv, stdin=b"")`` → Result; every result is kept in ``history``.

    Works in any fixture scope: output is captured by redirecting sys.stdout/stderr.
    """

    def __init__(self) -> None:
        self.history: list[tuple[tuple[str, ...], Result]] = []

    def __call__(self, *argv: object, stdin: bytes = b"") -> Result:
        args = tuple(str(a) for a in argv)
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse usage errors
                    code = int(exc.code or 0)
        finally:
            sys.stdin = saved
        result = Result(code, out.getvalue(), err.getvalue())
        self.history.append((args, result))
        return result


def dry_run_args(repo: object, env: str, root: object, *extra: object) -> tuple[object, ...]:
    """``atlas reconcile --dry-run`` of ``env`` from ``repo``, as user units under ``root``."""
    return ("reconcile", "--dry-run", "--repo", repo, "--env", env, "--scope", "user",
            "--root", root, *extra)  # fmt: skip
