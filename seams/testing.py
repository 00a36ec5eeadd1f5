"""In-memory doubles of the seams, for fast tests (never used by Atlas itself)."""

from __future__ import annotations

from collections.abc import Sequence

from seams.systemd import UnitState


class FakeClock:
    """A clock that only moves when told to: ``advance`` or ``sleep`` move wall and
    monotonic time together, so waiting code finishes at once."""

    def __init__(self, wall: float = 1_700_000_000.0, monotonic: float = 1000.0) -> None:
        self.t = wall
        self.m = monotonic
        self.slept: list[float] = []

    def wall(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.m

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.m += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


class RunningUnits:
    """Units that are all loaded and running, as ``systemctl show`` would say."""

    def states(self, units: Sequence[str]) -> dict[str, UnitState]:
        return {
            u: UnitState(u, load_state="loaded", active_state="active", sub_state="running")
            for u in units
        }
