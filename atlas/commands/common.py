"""Helpers shared by the command modules: how a command reaches the host, output."""

from __future__ import annotations

import argparse
import json
import os
import sys

import reconciler
from atlas.commands.args import scope_of


def access_of(args: argparse.Namespace) -> reconciler.Access:
    """How this command reaches the host: --scope, --root, --key-file, the environment."""
    scope: reconciler.Scope = "system" if scope_of(args) == "system" else "user"
    return reconciler.Access(scope, args.root, os.environ, getattr(args, "key_file", None))


def layout_of(args: argparse.Namespace) -> reconciler.HostLayout:
    return access_of(args).layout


def print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def shown_path(prefix: str, rel: str) -> str:
    """A problem's file as the user would type it: the repository argument + the file."""
    if not prefix or prefix == ".":
        return rel
    return f"{prefix.rstrip('/')}/{rel}" if not rel.startswith("/") else rel
