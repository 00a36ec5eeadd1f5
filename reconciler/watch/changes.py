"""Which live changes on a host are drift, and when a burst of them has settled. Pure.

The live watcher (``reconciler.watch.live``) feeds this module what it sees — paths
written in the folders Atlas writes, the states of the units Atlas starts — and
wakes the loop for a self-heal cycle when it says so.

What counts as drift:

- a file in the inventory whose content or mode differs from what Atlas wrote, or
  that is gone (``drift.detect`` decides, as for a poll cycle). Any other file in
  those folders (an editor's swap file, a unit Atlas does not own) is not;
- a unit Atlas starts that goes from up to down with no restart pending:
  ``inactive`` (stopped by hand) or ``failed`` (and systemd will not restart it).
  A unit in ``auto-restart`` (its ``Restart=`` is at work), activating or
  deactivating is on its way somewhere and is not drift; nor is a unit the
  operator suspended (the ``suspended`` predicate);
- only a change counts: a unit seen down once (and a heal that failed, or
  ``--no-self-heal``, left it down) is not reported again until it has been up.

Settling: a burst of events (an editor's write, rename and chmod; a hand
``systemctl stop`` followed by an edit) is one change, due ``window`` seconds
after its last event and at most ``longest`` seconds after its first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from reconciler.drift import DriftItem, detect
from reconciler.inventory import Inventory
from reconciler.observe import Observed, ObservedFile
from seams.systemd import UnitState

SETTLE_WINDOW = 0.25  # seconds of quiet after the last event of a burst
SETTLE_LONGEST = 2.0  # a burst that never goes quiet is acted on after this long
UNIT_POLL = 0.5  # seconds between two looks at the units' states

# SubStates in which systemd itself restarts the unit (Restart=); "auto-restart-queued"
# is what systemd 254 and later say while the restart job waits.
RESTARTING = frozenset({"auto-restart", "auto-restart-queued"})

Suspended = Callable[[str], bool]


def never_suspended(unit: str) -> bool:
    """The default: no unit is suspended (a later ``atlas suspend`` provides its own)."""
    return False


def unit_down(state: UnitState) -> str | None:
    """The drift kind of a unit in this state, or None when it is up or on its way."""
    if state.sub_state in RESTARTING:
        return None
    if state.active_state == "failed":
        return "unit-failed"
    if state.active_state == "inactive":
        return "unit-stopped"
    return None


class UnitSentry:
    """The units' last known up/down, and the ones that went down since."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {}

    def baseline(self, names: Iterable[str], up: Mapping[str, bool]) -> None:
        """After a cycle, the units to watch: what was known of a unit before the
        cycle stays (one stopped by hand while the cycle ran is still caught; one
        that was down, a heal that failed, is not reported again); a unit new here
        starts from ``up`` (what the cycle saw), or from its next observation."""
        known = {n: self.up[n] if n in self.up else up.get(n) for n in names}
        self.up = {n: was for n, was in known.items() if was is not None}

    def observe(
        self, states: Mapping[str, UnitState], suspended: Suspended = never_suspended
    ) -> list[DriftItem]:
        items: list[DriftItem] = []
        for name, state in sorted(states.items()):
            kind = unit_down(state)
            was_up = self.up.get(name, False)
            self.up[name] = kind is None
            if kind is not None and was_up and not suspended(name):
                detail = f"{state.active_state}/{state.sub_state}, no restart pending"
                items.append(DriftItem(kind, name, detail))
        return items


@dataclass
class Burst:
    """Changes seen since the last look, coalesced until they settle."""

    window: float = SETTLE_WINDOW
    longest: float = SETTLE_LONGEST
    paths: set[PurePosixPath] = field(default_factory=set)
    units: list[DriftItem] = field(default_factory=list)
    first: float | None = None
    last: float | None = None

    def _note(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.last = now

    def touched(self, paths: Iterable[PurePosixPath], now: float) -> None:
        self.paths.update(paths)
        self._note(now)

    def went_down(self, items: Iterable[DriftItem], now: float) -> None:
        items = list(items)
        if items:
            self.units.extend(items)
            self._note(now)

    def remaining(self, now: float) -> float | None:
        """Seconds until the burst is due (0: due now), or None when there is none."""
        if self.first is None or self.last is None:
            return None
        return max(0.0, min(self.last + self.window, self.first + self.longest) - now)

    def due(self, now: float) -> bool:
        left = self.remaining(now)
        return left is not None and left <= 0.0

    def take(self) -> tuple[set[PurePosixPath], list[DriftItem]]:
        paths, units = self.paths, self.units
        self.paths, self.units, self.first, self.last = set(), [], None, None
        return paths, units


def file_drift(
    inventory: Inventory,
    paths: Iterable[PurePosixPath],
    read: Callable[[PurePosixPath], ObservedFile],
    host_key: bytes,
) -> list[DriftItem]:
    """The inventory files among ``paths`` that differ from what Atlas wrote."""
    files = {p: inventory.files[p] for p in sorted(paths) if p in inventory.files}
    if not files:
        return []
    observed = Observed({p: read(p) for p in files}, {}, None)
    return detect(Inventory(files, {}), observed, host_key)
