"""What every command shares on the command line: exit codes and common options.

Imported by every command module when the parser is built, so it imports nothing
heavy: ``atlas --help`` and ``atlas validate`` stay fast.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypeAlias

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

# What ``register(sub)`` receives: the subparsers action of the top-level parser.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_output(parser: argparse.ArgumentParser, *choices: str) -> None:
    options = choices or ("text", "json")
    parser.add_argument(
        "--output",
        "-o",
        choices=options,
        default="text",
        help=f"result format: {', '.join(options)} (default text)",
    )


def add_host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scope",
        choices=("system", "user"),
        default=None,
        help="system (/etc, /var/lib, systemctl) or user (XDG dirs, systemctl --user); "
        "default: system for root, user otherwise",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="prefix for every host path, to plan or test against another tree",
    )


def add_key_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        type=Path,
        default=None,
        help="the environment's secrets key file (default: $ATLAS_SECRETS_KEY_FILE, "
        "then <config dir>/keys/<env>.key)",
    )


def scope_of(args: argparse.Namespace) -> str:
    """--scope, else DESIGN.md §5's default: system for root, user otherwise."""
    return str(args.scope or ("system" if os.geteuid() == 0 else "user"))
