"""Drift: how the host differs from what Atlas last applied. Pure.

The inventory records a digest and the mode of every file Atlas wrote and the units it
runs, so drift is found without re-rendering anything (and without the secrets key):
a file edited, removed or re-moded by hand, a unit stopped, failed or disabled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from reconciler.inventory import Inventory, content_digest
from reconciler.observe import Observed

DRIFT_KINDS = (
    "file-modified",
    "file-missing",
    "file-mode",
    "unit-stopped",
    "unit-failed",
    "unit-disabled",
)


@dataclass(frozen=True)
class DriftItem:
    kind: str
    target: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "detail": self.detail}


def detect(inventory: Inventory, observed: Observed, host_key: bytes) -> list[DriftItem]:
    items: list[DriftItem] = []
    for path, entry in sorted(inventory.files.items()):
        obs = observed.file(path)
        if not obs.exists:
            items.append(DriftItem("file-missing", str(path), "removed from the host"))
        elif content_digest(obs.content or b"", entry.kind, host_key) != entry.sha256:
            items.append(
                DriftItem("file-modified", str(path), "content differs from what Atlas wrote")
            )
        elif obs.mode != entry.mode:
            items.append(
                DriftItem(
                    "file-mode", str(path), f"mode {obs.mode or 0:04o}, expected {entry.mode:04o}"
                )
            )
    if observed.units is not None:
        for name, unit in sorted(inventory.units.items()):
            state = observed.unit(name)
            if unit.start and state.active_state == "failed":
                items.append(DriftItem("unit-failed", name, f"failed (result {state.result})"))
            elif unit.start and not state.running:
                items.append(
                    DriftItem("unit-stopped", name, f"{state.active_state}/{state.sub_state}")
                )
            if unit.enable and not state.enabled:
                items.append(
                    DriftItem("unit-disabled", name, state.unit_file_state or "not enabled")
                )
    return items


def by_kind(items: list[DriftItem]) -> dict[str, int]:
    counts = Counter(i.kind for i in items)
    return {kind: counts.get(kind, 0) for kind in DRIFT_KINDS}
