"""``atlas doctor``: what is wrong with this host and how to fix it, one line each.

The checks live in the reconciler (``reconciler.diagnose``); the one fact the platform
owns, when the newest backup was taken, is read here from the backup folder's names.
Exit 1 if any check found a problem; checks that could not be made here ("unknown")
are shown but do not count.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import reconciler
from atlas.commands.args import EXIT_ERROR, EXIT_OK, Subparsers, add_host, add_key_file, add_output
from atlas.commands.common import access_of, print_json

MARKS = {"ok": "ok     ", "problem": "PROBLEM", "unknown": "unknown"}


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this host: systemd, units, keys, repository, database, disk, clock, "
        "backups, the reconciler, ports",
        description="Check this host and say what is wrong and how to fix it, one line "
        "each; exit 1 if anything is.",
    )
    add_host(p)
    add_key_file(p)
    add_output(p)
    p.set_defaults(handler=doctor)


def newest_backup(folder: Path) -> float | None:
    from atlas.services.backup import list_backups

    try:
        found = list_backups(folder)
    except OSError:
        return None
    return found[0].taken_at if found else None


def doctor(args: argparse.Namespace) -> int:
    diagnosis = reconciler.doctor(access_of(args), newest_backup)
    if args.output == "json":
        print_json(diagnosis.as_dict())
    else:
        for f in diagnosis.findings:
            fix = f" → {f.fix}" if f.fix else ""
            print(f"{MARKS[f.verdict]}  {f.check:<10}  {f.message}{fix}")
            for line in f.details:
                print(f"{'':21}{line}")
        n = diagnosis.problems
        print(f"\n{n} problem(s)" if n else "\nno problems found")
    return EXIT_ERROR if diagnosis.problems else EXIT_OK
