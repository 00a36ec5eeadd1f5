"""Progress of long waits on a terminal: one line, rewritten in place, and nothing at
all when stderr is not a terminal (a pipe, a file, the journal).

The reconciler reports what it waits for (``Options.on_wait``: the units still coming
up and for how long); log lines printed meanwhile first clear the progress line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

_CLEAR = "\r\x1b[K"


class TerminalProgress:
    def __init__(
        self,
        stream: TextIO | None = None,
        every: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream  # None: sys.stderr as it is when written to
        self.every = every
        self.clock = clock
        self.shown = False
        self._last = -every

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def live(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def waiting(self, units: Sequence[str], elapsed: float) -> None:
        """``units`` are not healthy yet, ``elapsed`` seconds into the wait."""
        if not self.live or self.clock() - self._last < self.every:
            return
        self._last = self.clock()
        names = ", ".join(units[:3]) + (f" and {len(units) - 3} more" if len(units) > 3 else "")
        self.stream.write(f"{_CLEAR}  waiting for {names} to be healthy … {elapsed:.0f}s")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Before anything else is printed: the progress line goes away."""
        if self.shown:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self.shown = False
