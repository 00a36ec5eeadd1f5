"""``atlas migrate PATH``: rewrite manifests of an older apiVersion as the current one.

Files are rewritten in place, keeping comments, key order and quoting; documents
already current are left alone, so running it twice changes nothing the second
time. ``--dry-run`` (or ``--check``) shows what would change and exits 2 when
something would. A file that cannot be converted stops the command before any file
is written. What changes between versions: reconciler/migrate.py, docs/migrations.md.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from atlas.commands.args import EXIT_CHANGES, EXIT_OK, add_output


def register(sub: Any) -> None:
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
    from atlas.commands.common import print_json
    from reconciler.errors import ManifestError, Problem, UsageError
    from reconciler.manifests.migrate import FileMigration, manifest_paths, migrate_text
    from reconciler.manifests.yamledit import write_atomic

    results: list[FileMigration] = []
    problems: list[Problem] = []
    for target in args.paths:
        if not target.exists():
            raise UsageError(f"{target}: no such file or folder")
        for path in manifest_paths(target):
            shown = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                problems.append(Problem(shown, 0, "", "cannot read file as UTF-8 text"))
                continue
            try:
                results.append(migrate_text(text, path, shown))
            except ManifestError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems)
    changed = [r for r in results if r.changed]
    if not args.dry_run:
        for r in changed:
            write_atomic(r.path, r.after.encode("utf-8"))
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
