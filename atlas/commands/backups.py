"""``atlas backup create|list|verify|restore|prune``: page backups of the content
database, per the BackupPolicy in the rendered services.json (found through
--scope/--root unless --config names it). The work is in ``atlas.services``
(``pagebackups``); this module parses the arguments and prints the results.

``restore`` over the host's database holds the reconcile lock (so self-heal waits),
stops the units that use it (atlas-core*, atlas-api*) with systemctl of the scope
and starts them again; ``--to FILE``
restores to another file and touches no unit. ``restore FILE`` of a backup taken
before page backups (``atlas-<time>.db[.enc]``) still works as it did.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from atlas.commands.args import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    Subparsers,
    add_host,
    add_output,
    scope_of,
)
from atlas.commands.common import layout_of, print_json

if TYPE_CHECKING:
    from atlas.services.pagebackups import Target
    from atlas.services.settings import ServicesSettings
    from reconciler import HostLayout

VERBS = (
    ("create", "take a backup now"),
    ("list", "list backups, oldest first, and whether each can be restored"),
    ("verify", "rebuild backups in scratch and check them"),
    ("restore", "restore a backup, or the newest point before a time, over the database"),
    ("prune", "remove the backups the policy's retention does not keep"),
)


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("backup", help="backups of the content database")
    verbs = parser.add_subparsers(dest="backup_command", metavar="VERB")
    verbs.required = True
    for verb, helptext in VERBS:
        p = verbs.add_parser(verb, help=helptext, description=helptext)
        p.add_argument("--config", type=Path, default=None, help="rendered services.json")
        add_host(p)
        add_output(p)
        p.add_argument(
            "--passphrase-env",
            default=None,
            help="variable holding the passphrase (default: the policy's encryptionKeyEnv)",
        )
        p.set_defaults(handler=HANDLERS[verb])
        _verb_arguments(verb, p)


def _verb_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    if verb == "create":
        p.add_argument("--kind", choices=("full", "incremental"), default="full")
    elif verb == "verify":
        p.add_argument("id", nargs="?", default=None, help="a backup ID (default: --all)")
        p.add_argument("--all", action="store_true", help="every backup (the default)")
    elif verb == "restore":
        p.add_argument("id", nargs="?", default=None, help="a backup ID")
        p.add_argument("--at", default=None, help="the newest point at or before this UTC time")
        p.add_argument("--dry-run", action="store_true", help="say what would be done")
        p.add_argument("--to", type=Path, default=None, help="restore to this file instead")
        p.add_argument("--force", action="store_true", help="(old backup files) replace --to")
        p.add_argument(
            "--wait", type=float, default=30.0, help="seconds to wait for a running reconcile"
        )


def _target(args: argparse.Namespace) -> tuple[ServicesSettings, Target, HostLayout]:
    from atlas.services import settings as services_settings
    from atlas.services.pagebackups import Target

    layout = layout_of(args)
    path = args.config or layout.on_disk(layout.config_dir / "services.json")
    settings = services_settings.load(path)
    policy = settings.backup_policy()
    dest = layout.on_disk(PurePosixPath(policy.destination))
    return settings, Target.of(policy, dest, os.environ, args.passphrase_env), layout


def backup_create(args: argparse.Namespace) -> int:
    from atlas.services import pagebackups

    settings, target, layout = _target(args)
    database = layout.on_disk(PurePosixPath(settings.database))
    made = pagebackups.create(target, database, args.kind, time.time(), settings.busy_timeout_s)
    if args.output == "json":
        print_json(made.as_dict())
    else:
        note = " (no usable backup to build on: a full one)" if made.kind != args.kind else ""
        print(
            f"{made.id}: {made.kind}{note}, {made.pages_stored} of {made.page_count} pages, "
            f"{made.payload_bytes} bytes"
        )
    return EXIT_OK


def backup_list(args: argparse.Namespace) -> int:
    from atlas.services import catalog
    from atlas.services.backup import list_backups

    _, target, _ = _target(args)
    entries = catalog.catalog(target.destination)
    older = list_backups(target.destination)  # whole-file backups of earlier releases
    if args.output == "json":
        print_json(
            {"backups": [e.as_dict() for e in entries], "files": [b.as_dict() for b in older]}
        )
        return EXIT_OK
    if not entries and not older:
        print("no backups yet")
    for e in entries:
        m = e.manifest
        state = "ok" if e.usable else f"UNUSABLE: {e.problem}"
        sealed = "encrypted" if m.encryption else "plain"
        print(f"{m.id}  {m.kind:<11} {m.payload_bytes:>12}  {sealed:<9}  {state}")
    for b in older:
        print(f"{b.path}  (a whole-file backup: atlas backup restore FILE --to DB)")
    return EXIT_OK


def backup_verify(args: argparse.Namespace) -> int:
    from atlas.services import pagebackups

    _, target, _ = _target(args)
    verdicts = pagebackups.verify(target, None if args.all else args.id, time.time())
    if args.output == "json":
        print_json({"verified": [v.as_dict() for v in verdicts]})
    else:
        for v in verdicts:
            print(f"{v.id}: ok" if v.ok else f"{v.id}: FAILED: {v.problem}")
    return EXIT_OK if all(v.ok for v in verdicts) else EXIT_ERROR


def backup_restore(args: argparse.Namespace) -> int:
    from atlas.services import catalog, pagebackups
    from atlas.services.pause import reconciler_paused
    from atlas.services.units import NoUnits, SystemdUnits, UnitControl

    if args.id and Path(args.id).is_file():
        return _restore_old_file(args)
    settings, target, layout = _target(args)
    database = args.to or layout.on_disk(PurePosixPath(settings.database))
    at = catalog.parse_time(args.at) if args.at else None
    units: UnitControl = NoUnits() if args.to else SystemdUnits(scope_of(args), os.environ)  # type: ignore[arg-type]
    chosen = pagebackups.point(target, args.id, at)
    paused: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if not args.to and not args.dry_run:
        paused = reconciler_paused(layout.on_disk(layout.reconciler_dir / "lock"), args.wait)
    with paused:
        done = pagebackups.restore(target, chosen, database, units, time.time(), args.dry_run)
    if args.output == "json":
        print_json(done.as_dict())
    else:
        verb = "restored" if done.done else "would restore"
        print(f"{verb} {done.point} (the database as of {catalog.iso(done.created)})")
        print(f"  chain: {' -> '.join(done.chain)}; schema version {done.schema_version}")
        print(f"  over: {done.target}" + (f" (kept aside as {done.aside})" if done.aside else ""))
        if done.units:
            stopped = "stopped and started" if done.done else "would stop and start"
            print(f"  units {stopped}: {', '.join(done.units)}")
    return EXIT_OK if done.done else EXIT_CHANGES


def _restore_old_file(args: argparse.Namespace) -> int:
    from atlas.services.backup import restore

    settings, target, layout = _target(args)
    to = args.to or layout.on_disk(PurePosixPath(settings.database))
    restore(Path(args.id), to, target.passphrase, args.force)
    if args.output == "json":
        print_json({"restored": str(args.id), "to": str(to)})
    else:
        print(f"restored {args.id} to {to} (integrity check ok)")
    return EXIT_OK


def backup_prune(args: argparse.Namespace) -> int:
    from atlas.services import pagebackups

    _, target, _ = _target(args)
    removed = pagebackups.prune(target, time.time())
    if args.output == "json":
        print_json({"removed": removed})
    else:
        print(f"removed {len(removed)} backup(s)" + "".join(f"\n  {i}" for i in removed))
    return EXIT_OK


HANDLERS = {
    "create": backup_create,
    "list": backup_list,
    "verify": backup_verify,
    "restore": backup_restore,
    "prune": backup_prune,
}
