"""The ``atlas`` command line: the one place where the reconciler (control plane)
and the platform (data plane) meet (DESIGN.md §1).

Each group of verbs lives in a module of ``atlas.commands`` with a ``register``
function; modules import their heavy dependencies inside the handlers so that
``atlas --help`` and ``atlas validate`` start fast.

Exit codes: 0 success or nothing to change; 1 error or invalid input; 2 a dry run
found changes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from atlas.commands.args import EXIT_ERROR, EXIT_OK
from seams import build

COMMAND_MODULES = (
    "atlas.commands.manifests",
    "atlas.commands.reconcile",
    "atlas.commands.secrets",
    "atlas.commands.migrate",
    "atlas.commands.monitoring",
    "atlas.commands.platform",
    "atlas.commands.backups",
    "atlas.commands.doctor",
    "atlas.commands.report",
    "atlas.commands.rollout",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas",
        description="Atlas: content ingestion operated from git.",
    )
    parser.add_argument("--version", action="version", version=f"atlas {build.version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits 2 on a usage error, which a CI job would read as "a dry run
        # found changes" (EXIT_CHANGES): a usage error is an error like any other
        return EXIT_OK if exc.code in (None, 0) else EXIT_ERROR
    from atlas.errors import AtlasError
    from reconciler import ManifestError, ReconcilerError

    try:
        result: int = args.handler(args)
        return result
    except KeyboardInterrupt:
        print("atlas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except ManifestError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(
            f"atlas: error: {len(exc.problems)} manifest problem(s); nothing was changed",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except (ReconcilerError, AtlasError) as exc:
        print(f"atlas: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
