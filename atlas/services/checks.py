"""Verifying page backups and restore drills, and the record of how they went.

``verify`` rebuilds each chosen backup's chain in a scratch folder beside the
backups and checks it (``rebuild.check``) — one rebuild per chain, checked at every
point — and reports each backup as ok or exactly what is wrong. ``drill`` does
that for the newest restorable point, as a restore would. ``status.json`` in the
destination keeps the last successes, sizes and failures, and ``atlas_backup.prom``
beside it says them in the Prometheus text format.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas.errors import BackupError
from atlas.services import catalog, rebuild
from atlas.services.catalog import Entry, Manifest
from seams.fsio import write_atomic

STATUS = "status.json"
METRICS = "atlas_backup.prom"


@dataclass(frozen=True)
class Verdict:
    id: str
    ok: bool
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "problem": self.problem}


@contextmanager
def scratch(dest: Path) -> Iterator[Path]:
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = Path(tempfile.mkdtemp(prefix=".scratch-", dir=dest))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def rebuild_checked(
    dest: Path,
    chain: list[Manifest],
    into: Path,
    passphrase: str | None,
    each: Callable[[Manifest], None] | None = None,
) -> None:
    """Rebuild ``chain`` into ``into`` and check the final point (and each, with ``each``)."""
    rebuild.rebuild(dest, chain, into, passphrase, after=each)
    if each is None:
        rebuild.check(into, chain[-1])


def _verify_chain(
    dest: Path, chain: list[Manifest], passphrase: str | None, folder: Path
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    into = folder / f"{chain[0].id}.db"

    def each(m: Manifest) -> None:
        rebuild.check(into, m)
        verdicts.append(Verdict(m.id, True, None))

    try:
        rebuild_checked(dest, chain, into, passphrase, each)
    except BackupError as exc:
        failed = chain[len(verdicts)].id
        verdicts.append(Verdict(failed, False, str(exc)))
        for m in chain[len(verdicts) :]:
            verdicts.append(Verdict(m.id, False, f"backup {m.id}: its chain fails at {failed}"))
    finally:
        into.unlink(missing_ok=True)
    return verdicts


def verify(
    dest: Path, entries: Sequence[Entry], chosen: Sequence[Entry], passphrase: str | None
) -> list[Verdict]:
    """A verdict for each of ``chosen`` (and the links of their chains)."""
    wanted = {e.manifest.id for e in chosen}
    out = [
        Verdict(e.manifest.id, False, f"backup {e.manifest.id}: {e.problem}")
        for e in chosen
        if not e.usable
    ]
    tips: dict[str, Entry] = {}  # per full backup, the newest chosen point of its chain
    for e in chosen:
        if e.usable:
            tips[e.chain[0]] = e
    with scratch(dest) as folder:
        for tip in tips.values():
            chain = catalog.chain_manifests(entries, tip)
            verdicts = _verify_chain(dest, chain, passphrase, folder)
            out += [v for v in verdicts if v.id in wanted]
    return sorted(out, key=lambda v: v.id)


def drill(dest: Path, passphrase: str | None, now: float) -> Verdict:
    """Restore the newest restorable point to scratch and check it; recorded in status."""
    entries = catalog.catalog(dest)
    usable = [e for e in entries if e.usable]
    if not usable:
        verdict = Verdict("-", False, f"{dest}: no usable backup to drill")
    else:
        tip = usable[-1]
        with scratch(dest) as folder:
            try:
                rebuild_checked(
                    dest, catalog.chain_manifests(entries, tip), folder / "drill.db", passphrase
                )
                verdict = Verdict(tip.manifest.id, True, None)
            except BackupError as exc:
                verdict = Verdict(tip.manifest.id, False, str(exc))
    record(dest, verified=[verdict], now=now, drilled=True)
    return verdict


# ---------------------------------------------------------------- status and metrics


def load_status(dest: Path) -> dict[str, Any]:
    try:
        data = json.loads((dest / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return data if isinstance(data, dict) else {}


def record(
    dest: Path,
    *,
    now: float,
    made: Manifest | None = None,
    verified: Sequence[Verdict] = (),
    drilled: bool = False,
) -> None:
    """Note a new backup or a verification in status.json and atlas_backup.prom."""
    status = load_status(dest)
    if made is not None:
        status.setdefault("lastSuccess", {})[made.kind] = made.created
        status.setdefault("sizeBytes", {})[made.kind] = made.payload_bytes
    if drilled:
        status["lastDrill"] = now
    failures = [v for v in verified if not v.ok]
    if verified and not failures:
        status["lastVerifiedRestore"] = now
    status["verifyFailures"] = int(status.get("verifyFailures", 0)) + len(failures)
    write_atomic(dest / STATUS, json.dumps(status, indent=2).encode() + b"\n", 0o600)
    write_atomic(dest / METRICS, metrics_text(status).encode(), 0o644)


def metrics_text(status: dict[str, Any]) -> str:
    lines = [
        "# HELP atlas_backup_last_success_timestamp_seconds When the last backup of a kind "
        "was taken.",
        "# TYPE atlas_backup_last_success_timestamp_seconds gauge",
    ]
    for kind, at in sorted(status.get("lastSuccess", {}).items()):
        lines.append(f'atlas_backup_last_success_timestamp_seconds{{kind="{kind}"}} {at}')
    lines += [
        "# HELP atlas_backup_size_bytes Size of the last backup of a kind, as stored.",
        "# TYPE atlas_backup_size_bytes gauge",
    ]
    for kind, size in sorted(status.get("sizeBytes", {}).items()):
        lines.append(f'atlas_backup_size_bytes{{kind="{kind}"}} {size}')
    lines += [
        "# HELP atlas_backup_last_verified_restore_timestamp_seconds When a restore of the "
        "newest point to scratch last passed every check.",
        "# TYPE atlas_backup_last_verified_restore_timestamp_seconds gauge",
    ]
    if "lastVerifiedRestore" in status:
        lines.append(
            f"atlas_backup_last_verified_restore_timestamp_seconds {status['lastVerifiedRestore']}"
        )
    lines += [
        "# HELP atlas_backup_verify_failures_total Backups found damaged by verify or a drill.",
        "# TYPE atlas_backup_verify_failures_total counter",
        f"atlas_backup_verify_failures_total {int(status.get('verifyFailures', 0))}",
    ]
    return "\n".join(lines) + "\n"
