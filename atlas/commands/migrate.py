"""``atlas migrate PATH``: rewrite manifests of an older apiVersion as the current one.

Files are rewritten in place, keeping comments, key order and quoting; documents
already current are left alone, so running it twice changes nothing the second
time. ``--dry-run`` (or ``--check``) shows what would change and exits 2 when
something would. A file that cannot be converted stops the command before any file
is written. What changes between versions: reconciler/manifests/migrate.py,
docs/migrations.md.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

import reconciler
from atlas.commands.args import EXIT_CHANGES, EXIT_OK, Subparsers, add_output
from atlas.commands.common import print_json


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "migrate",
        help="convert manifests of an older apiVersion to the current one",
        description="Rewrite every manifest of an older apiVersion under PATH (a file or a "
        "folder) as the current apiVersion, keeping comments and order.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a manifest file or folder")
    p.add_argument(
        "--dry-run",
        "--check",
        dest="dry_run",
        action="store_true",
        help="show what would change (exit 2 when something would); write nothing",
    )
    add_output(p)
    p.set_defaults(handler=migrate)


def migrate(args: argparse.Namespace) -> int:
    results = reconciler.migrate_paths(args.paths)
    changed = [r for r in results if r.changed]
    if not args.dry_run:
        reconciler.write_migrations(changed)
    if args.output == "json":
        print_json(
            {
                "dryRun": args.dry_run,
                "files": [
                    {
                        "file": r.rel,
                        "documents": [{"ref": ref, "changes": list(c)} for ref, c in r.changes],
                    }
                    for r in changed
                ],
            }
        )
    else:
        for r in changed:
            for ref, done in r.changes:
                print(f"{r.rel}: {ref}: {'; '.join(done)}")
            if args.dry_run:
                sys.stdout.writelines(
                    difflib.unified_diff(
                        r.before.splitlines(keepends=True),
                        r.after.splitlines(keepends=True),
                        fromfile=r.rel,
                        tofile=f"{r.rel} (migrated)",
                    )
                )
        verb = "would be migrated" if args.dry_run else "migrated"
        summary = (
            f"{len(changed)} of {len(results)} file(s) {verb}"
            if changed
            else f"nothing to migrate: {len(results)} file(s) already current"
        )
        print(summary, file=sys.stderr)
    return EXIT_CHANGES if args.dry_run and changed else EXIT_OK
