"""Helpers shared by the command modules: host layout, keys, output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from atlas.commands.args import scope_of
from reconciler.host.paths import HostLayout, Scope, host_layout
from reconciler.render.desired import HostFacts, RenderContext
from reconciler.secrets.keys import find_key_file, load_key_file
from reconciler.secrets.sources import KeyFileSecrets, SecretsSource


def layout_of(args: argparse.Namespace) -> HostLayout:
    scope: Scope = "system" if scope_of(args) == "system" else "user"
    return host_layout(scope, args.root, os.environ)


def facts() -> HostFacts:
    return HostFacts.current(os.environ.get("ATLAS_PYTHON"))


def render_context(
    args: argparse.Namespace, layout: HostLayout, invocation: Any = None
) -> RenderContext:
    return RenderContext(layout, facts(), invocation)


def key_file_of(args: argparse.Namespace, layout: HostLayout, env: str) -> tuple[Path, bool]:
    """(the environment's key file, chosen explicitly): --key-file, the variable, the default."""
    return find_key_file(
        env,
        getattr(args, "key_file", None),
        os.environ.get("ATLAS_SECRETS_KEY_FILE"),
        layout.on_disk(layout.config_dir),
    )


def secrets_source(args: argparse.Namespace, layout: HostLayout, env: str) -> SecretsSource | None:
    """Decrypts with the environment's key file, read when a secret is first needed.

    None when no key file was named and the default one does not exist (a keyless plan).
    """
    path, chosen = key_file_of(args, layout, env)
    if not chosen and not path.exists():
        return None
    return KeyFileSecrets(lambda: load_key_file(path))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def shown_path(prefix: str, rel: str) -> str:
    """A problem's file as the user would type it: the repository argument + the file."""
    if not prefix or prefix == ".":
        return rel
    return f"{prefix.rstrip('/')}/{rel}" if not rel.startswith("/") else rel
