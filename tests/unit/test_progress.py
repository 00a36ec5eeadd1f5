"""Long waits show progress on a terminal and nothing elsewhere (atlas.commands.progress),
and verification reports what it waits for (reconciler.verify ``on_wait``)."""

from __future__ import annotations

import io
from pathlib import PurePosixPath

from atlas.commands.progress import TerminalProgress
from reconciler.host.testing import FakeProbe, FakeRuntime
from reconciler.render.desired import Probe, UnitSpec
from reconciler.verify import Patience, verify
from seams.systemd import UnitState
from seams.testing import FakeClock


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_line_rewritten_in_place_then_cleared() -> None:
    now = [0.0]
    out = Tty()
    progress = TerminalProgress(out, every=1.0, clock=lambda: now[0])
    progress.waiting(["atlas-api.service"], 0.0)
    progress.waiting(["atlas-api.service"], 0.5)  # too soon: not redrawn
    now[0] = 1.5
    units = ["a.service", "b.service", "c.service", "d.service", "e.service"]
    progress.waiting(units, 1.5)
    progress.clear()
    progress.clear()  # nothing shown: nothing to clear
    assert out.getvalue() == (
        "\r\x1b[K  waiting for atlas-api.service to be healthy … 0s"
        "\r\x1b[K  waiting for a.service, b.service, c.service and 2 more to be healthy … 2s"
        "\r\x1b[K"
    )


def test_a_pipe_or_file_gets_nothing() -> None:
    out = io.StringIO()
    progress = TerminalProgress(out, every=0.0)
    progress.waiting(["atlas-api.service"], 3.0)
    progress.clear()
    assert out.getvalue() == ""


def test_verification_says_what_it_is_waiting_for() -> None:
    runtime, probe, clock = FakeRuntime(), FakeProbe(), FakeClock()
    url = "http://127.0.0.1:1/readyz"
    runtime.units["atlas-api.service"] = UnitState(
        "atlas-api.service", load_state="loaded", active_state="active", sub_state="running",
        main_pid=7,
    )  # fmt: skip
    probe.failing[url] = 503
    spec = UnitSpec(
        "atlas-api.service", PurePosixPath("/u"), "api", True, True, Probe(url, 0.5, 2.0, 1)
    )
    seen: list[tuple[list[str], float]] = []

    def heal_after_a_second(units, elapsed) -> None:  # type: ignore[no-untyped-def]
        seen.append((list(units), elapsed))
        if elapsed >= 1.0:
            probe.failing.clear()

    verdict = verify(
        [spec],
        runtime,
        probe,
        clock,
        patience=Patience(stable_for=0.2),
        on_wait=heal_after_a_second,
    )
    assert verdict.ok, verdict.reason
    assert seen and all(units == ["atlas-api.service"] for units, _ in seen)
    assert [e for _, e in seen] == sorted(e for _, e in seen) and seen[-1][1] >= 1.0
