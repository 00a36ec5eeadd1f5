"""Apply a plan: the only stage that writes files or calls systemctl.

Crash safety:

* Every action of the plan is journaled in the state DB before the first one runs,
  and marked done as it completes.
* Files are written to a temp file in the same folder, fsynced, renamed over the
  target and the folder fsynced, so a file is either old or new, never half-written.
  Stray temp files of a killed run are removed by the next one.
* The inventory entry of a file or unit is recorded before the file is written or
  the unit started, so whatever Atlas may have created is always known to it.
* Restarts, reloads and daemon-reloads still pending when a run died cannot be
  re-derived from the host (the files are already in place), so the next run carries
  them over from the journal (``carried_over``) into its own plan.

Releases a plan installs are installed first, before anything is journaled or
touched: a version that cannot be installed (or fails its checksum) raises
``ReleaseError`` with every running unit as it was. Releases it prunes go once every
other action ran (their journal entries are only markers).

Units of one template (``atlas-api@1``, ``@2`` …) restart in batches of the
Deployment's ``maxUnavailable`` when its strategy is rolling, each batch verified
before the next (``batch_check``); when it is blueGreen, their restarts are one
blue-green rollout (``reconciler.rollout.bluegreen``), journaled done once it is over,
so a run killed in the middle carries them over and the next run rolls out again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from reconciler.actions import (
    Action,
    DaemonReload,
    Disable,
    Enable,
    InstallRelease,
    MakeDirectory,
    Plan,
    PruneRelease,
    Reload,
    RemoveFile,
    Restart,
    Start,
    Stop,
    UnitAction,
    WriteFile,
    action_record,
)
from reconciler.host.paths import HostLayout
from reconciler.host.releases import ReleaseError, ReleaseInstaller
from reconciler.host.runtime import Runtime
from reconciler.inventory import file_entry, unit_entry
from reconciler.render.desired import Rendered, UnitSpec
from reconciler.rollout.bluegreen import BlueGreenRollout, RolloutAborted, target_of
from reconciler.state import StateStore
from seams.fsio import TEMP_PREFIX, write_atomic


@dataclass
class ApplyResult:
    run_id: str
    done: list[Action] = field(default_factory=list)
    touched_units: list[str] = field(default_factory=list)  # started, restarted or reloaded
    # actions left for after the run is recorded (``handed_over``)
    deferred: list[UnitAction] = field(default_factory=list)


def handed_over(
    action: Action, units: dict[str, UnitSpec], self_unit: str | None
) -> TypeGuard[UnitAction]:
    """Whether ``action`` waits until the run is recorded, and then does not block.

    Restarts, reloads and stops of the unit this reconciler runs in would kill the run
    half-way. Starts and restarts of the reconciler's own service from a run outside it
    (``atlas reconcile --once`` bootstrapping ``atlas-reconciler.service``) would wait
    for a service that waits for the reconcile lock this run holds: a deadlock. Both
    are requested without blocking once the run is recorded and the lock released.
    """
    if not isinstance(action, Start | Restart | Reload | Stop):
        return False
    if self_unit is not None and action.unit == self_unit:
        return True
    spec = units.get(action.unit)
    return (
        isinstance(action, Start | Restart) and spec is not None and spec.component == "reconciler"
    )


def remove_stray_temp_files(layout: HostLayout, rendered: Rendered) -> list[Path]:
    """Temp files left by a run killed mid-write, in the folders Atlas writes to."""
    removed = []
    folders = {layout.on_disk(f.path.parent) for f in rendered.files}
    for folder in folders:
        if folder.is_dir():
            for stray in folder.glob(f"{TEMP_PREFIX}*"):
                stray.unlink(missing_ok=True)
                removed.append(stray)
    return removed


BatchCheck = Callable[[Sequence[str]], None]


class Applier:
    def __init__(
        self,
        layout: HostLayout,
        runtime: Runtime,
        store: StateStore,
        releases: ReleaseInstaller | None = None,
        rollout: BlueGreenRollout | None = None,
    ) -> None:
        self.layout = layout
        self.runtime = runtime
        self.store = store
        self.releases = releases
        self.rollout = rollout

    def install_releases(self, plan: Plan) -> None:
        """Every release ``plan`` installs, before any other action; ReleaseError if not."""
        for action in plan.actions:
            if isinstance(action, InstallRelease):
                if self.releases is None:
                    raise ReleaseError(
                        f"release {action.release.version}: this reconciler has no release "
                        "installer"
                    )
                self.releases.install(action.release.request)

    def prune_releases(self, plan: Plan) -> None:
        """The releases ``plan`` prunes, once every unit action ran (upkeep: never fails)."""
        for action in plan.actions:
            if isinstance(action, PruneRelease) and self.releases is not None:
                self.releases.remove(action.version)

    def apply(
        self,
        plan: Plan,
        rendered: Rendered,
        batch_check: BatchCheck | None = None,
        progress: Callable[[Action], None] | None = None,
        self_unit: str | None = None,
    ) -> ApplyResult:
        """Run ``plan``; ``batch_check`` verifies each rolling batch (raising on failure).

        Actions on the reconciler's own service (``handed_over``) are not run here:
        they are marked done and returned in ``deferred`` for the caller to request,
        without blocking, once the run is recorded.
        """
        self.install_releases(plan)
        run_id = uuid.uuid4().hex[:12]
        result = ApplyResult(run_id)
        remove_stray_temp_files(self.layout, rendered)
        self.store.journal_begin(run_id, [action_record(a) for a in plan.actions])
        units = {u.name: u for u in rendered.units}
        actions = list(plan.actions)
        i = 0
        while i < len(actions):
            action = actions[i]
            batch = self._blue_green(actions, i, rendered)
            if batch:  # one rollout, journaled done once it is over
                self._roll_out(batch, rendered, result)
                self._mark(run_id, actions, batch, progress)
                i += len(batch)
                continue
            if isinstance(action, Restart) and batch_check is not None:
                batch = self._rolling_batch(actions, i, units)
                if len(batch) > 1 or self._is_rolling(units.get(action.unit)):
                    for seq_action in batch:
                        self._run(seq_action, units, result)
                        self._mark(run_id, actions, [seq_action], progress)
                    batch_check([a.unit for a in batch])
                    i += len(batch)
                    continue
            if handed_over(action, units, self_unit):
                if isinstance(action, Start):
                    self.store.record_unit(unit_entry(units[action.unit]))
                result.deferred.append(action)
            else:
                self._run(action, units, result)
            self.store.journal_done(run_id, i)
            if progress:
                progress(action)
            i += 1
        self.prune_releases(plan)
        self.store.replace_units([unit_entry(u) for u in rendered.units])
        self.store.journal_clear()
        return result

    def _mark(
        self,
        run_id: str,
        actions: list[Action],
        done: Sequence[Action],
        progress: Callable[[Action], None] | None,
    ) -> None:
        for action in done:
            self.store.journal_done(run_id, actions.index(action))
            if progress:
                progress(action)

    def clear_journal(self) -> None:
        """Nothing left to finish: an interrupted run's journal is settled."""
        self.store.journal_clear()

    def _blue_green(self, actions: list[Action], i: int, rendered: Rendered) -> list[Restart]:
        """The restarts of a blueGreen template starting at ``i`` (none: not one)."""
        first = actions[i]
        spec = next((u for u in rendered.units if u.name == first.target), None)
        if not isinstance(first, Restart) or spec is None or spec.strategy is None:
            return []
        if spec.strategy.blue_green is None or spec.template is None:
            return []
        prefix = spec.template.partition("@")[0] + "@"
        batch = [first]
        for nxt in actions[i + 1 :]:
            if not isinstance(nxt, Restart) or not nxt.unit.startswith(prefix):
                break
            batch.append(nxt)
        return batch

    def _roll_out(self, batch: list[Restart], rendered: Rendered, result: ApplyResult) -> None:
        first = next(u for u in rendered.units if u.name == batch[0].unit)
        specs = [u for u in rendered.units if u.template == first.template]
        target = target_of(specs)
        if self.rollout is None or target is None:
            raise RolloutAborted(f"{first.component}: this reconciler cannot run blue-green")
        self.rollout.run(target)
        for action in batch:
            result.done.append(action)
            result.touched_units.append(action.unit)

    @staticmethod
    def _is_rolling(spec: UnitSpec | None) -> bool:
        return (
            spec is not None
            and spec.strategy is not None
            and spec.strategy.type != "recreate"
            and spec.template is not None
        )

    def _rolling_batch(
        self, actions: list[Action], i: int, units: dict[str, UnitSpec]
    ) -> list[Restart]:
        first = actions[i]
        assert isinstance(first, Restart)
        spec = units.get(first.unit)
        if not self._is_rolling(spec):
            return [first]
        assert spec is not None and spec.strategy is not None
        size = max(1, spec.strategy.max_unavailable)
        batch = [first]
        for nxt in actions[i + 1 :]:
            other = units.get(nxt.unit) if isinstance(nxt, Restart) else None
            if len(batch) >= size or other is None or other.template != spec.template:
                break
            assert isinstance(nxt, Restart)
            batch.append(nxt)
        return batch

    def _run(self, action: Action, units: dict[str, UnitSpec], result: ApplyResult) -> None:
        if isinstance(action, WriteFile):
            f = action.file
            self.store.record_file(file_entry(f, self.store.host_key))
            write_atomic(self.layout.on_disk(f.path), f.content, f.mode)
        elif isinstance(action, RemoveFile):
            self.layout.on_disk(action.path).unlink(missing_ok=True)
            self.store.forget_file(action.path)
        elif isinstance(action, MakeDirectory):
            disk = self.layout.on_disk(action.path)
            disk.mkdir(parents=True, exist_ok=True, mode=action.mode)
        elif isinstance(action, DaemonReload):
            self.runtime.daemon_reload()
        elif isinstance(action, UnitAction):
            spec = units.get(action.unit)
            if spec is not None and isinstance(action, Start | Enable):
                self.store.record_unit(unit_entry(spec))
            if isinstance(action, Start | Restart):
                self.runtime.reset_failed(action.unit)
            {
                "start": self.runtime.start,
                "stop": self.runtime.stop,
                "restart": self.runtime.restart,
                "reload": self.runtime.reload,
                "enable": self.runtime.enable,
                "disable": self.runtime.disable,
            }[action.verb](action.unit)
            if isinstance(action, Start | Restart | Reload):
                result.touched_units.append(action.unit)
            if isinstance(action, Disable) and spec is None:
                self.store.forget_unit(action.unit)
        result.done.append(action)
