"""Helpers shared by the command modules: host layout, keys, output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from atlas.cli import scope_of
from reconciler.build import KeyRingSecrets, SecretsSource
from reconciler.paths import HostLayout, Scope, host_layout
from reconciler.render import HostFacts, RenderContext
from reconciler.secrets import open_keyring


def layout_of(args: argparse.Namespace) -> HostLayout:
    scope: Scope = "system" if scope_of(args) == "system" else "user"
    return host_layout(scope, args.root, os.environ)


def facts() -> HostFacts:
    return HostFacts(python=os.environ.get("ATLAS_PYTHON") or sys.executable)


def render_context(
    args: argparse.Namespace, layout: HostLayout, invocation: Any = None
) -> RenderContext:
    return RenderContext(layout, facts(), invocation)


def secrets_source(args: argparse.Namespace, layout: HostLayout, env: str) -> SecretsSource | None:
    keyring = open_keyring(
        env,
        getattr(args, "key_file", None),
        os.environ.get("ATLAS_SECRETS_KEY_FILE"),
        layout.on_disk(layout.config_dir),
    )
    return KeyRingSecrets(keyring) if keyring else None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def shown_path(prefix: str, rel: str) -> str:
    """A problem's file as the user would type it: the repository argument + the file."""
    if not prefix or prefix == ".":
        return rel
    return f"{prefix.rstrip('/')}/{rel}" if not rel.startswith("/") else rel
