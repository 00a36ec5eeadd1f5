"""Which page backups to keep: the newest ``keepLast`` points (none older than
``maxAge``, but always the newest), and every backup a kept one needs to be
restored — a full backup is never removed while a kept incremental builds on it.
Files of a backup killed between its renames (no manifest) go too.
"""

from __future__ import annotations

from pathlib import Path

from atlas.services import catalog
from atlas.services.capture import folder_lock


def chosen_for_removal(
    entries: list[catalog.Entry], keep_last: int, max_age_s: float | None, now: float
) -> list[str]:
    newest_first = list(reversed(entries))
    keep: set[str] = set()
    for rank, e in enumerate(newest_first):
        too_old = max_age_s is not None and now - e.manifest.created > max_age_s
        if rank == 0 or (rank < keep_last and not too_old):
            keep.update(e.chain)
    return [e.manifest.id for e in entries if e.manifest.id not in keep]


def prune(dest: Path, keep_last: int, max_age_s: float | None, now: float) -> list[str]:
    """Remove what retention does not keep; the ids removed, oldest first."""
    if not dest.exists():
        return []
    with folder_lock(dest):
        entries = catalog.catalog(dest)
        removed = chosen_for_removal(entries, keep_last, max_age_s, now)
        for backup_id in removed:
            files = catalog.paths(dest, backup_id)
            files["manifest"].unlink(missing_ok=True)  # first: it stops being listed
            files["pages"].unlink(missing_ok=True)
            files["digests"].unlink(missing_ok=True)
        listed = {e.manifest.id for e in entries}
        for path in [*dest.glob("atlas-*.pages"), *dest.glob("atlas-*.digests")]:
            if path.stem not in listed and catalog.ID.match(path.stem):
                path.unlink(missing_ok=True)
    return removed
