"""``atlas reconcile``: converge this host to a revision of the manifests."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from atlas.cli import EXIT_CHANGES, EXIT_OK, add_host, add_key_file, add_output


def add_target(p: argparse.ArgumentParser, env_required: bool = True) -> None:
    p.add_argument(
        "--repo", default=".", help="git repository URL or path, or a plain folder (default .)"
    )
    p.add_argument("--ref", default=None, help="branch, tag or commit (default: the remote's HEAD)")
    p.add_argument("--path", default=".", help="folder of the manifests inside the repository")
    p.add_argument("--env", required=env_required, help="the environment to converge")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "reconcile",
        help="converge this host to the manifests in git",
        description="Fetch, validate, render and plan; with --dry-run print the "
        "plan (exit 2 when it has changes) and change nothing.",
    )
    add_target(p)
    add_host(p)
    add_key_file(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument("--no-diff", action="store_true", help="leave file diffs out of the text plan")
    add_output(p, "text", "json", "markdown")
    p.set_defaults(handler=reconcile)


def reconcile(args: argparse.Namespace) -> int:
    from atlas.commands.common import layout_of, render_context, secrets_source
    from reconciler import pipeline, planfmt
    from reconciler.errors import RuntimeUnavailable, UsageError
    from reconciler.inventory import Inventory
    from reconciler.state import StateStore, state_path
    from reconciler.systemd import Runtime, Systemctl

    layout = layout_of(args)
    target = pipeline.Target(args.repo, args.ref, args.path, args.env)
    if not args.dry_run:
        raise UsageError("applying is not available yet: use --dry-run")
    cache = layout.on_disk(layout.reconciler_dir) / "git"
    co = pipeline.fetch(target, cache)
    ctx = render_context(args, layout, target.invocation)
    prepared = pipeline.prepare_checkout(co, args.env, ctx, secrets_source(args, layout, args.env))
    store = StateStore.existing(state_path(layout.on_disk(layout.reconciler_dir)))
    inventory = store.inventory() if store else Inventory()
    runtime: Runtime | None = None
    if str(args.root) == "/":
        candidate = Systemctl(layout.scope, os.environ)
        try:
            candidate.system_state()
            runtime = candidate
        except (RuntimeUnavailable, Exception):  # noqa: BLE001 - no manager: units unknown
            runtime = None
    plan, _ = pipeline.plan_for(prepared, ctx, inventory, runtime)
    if args.output == "json":
        sys.stdout.write(planfmt.as_json(plan))
    elif args.output == "markdown":
        sys.stdout.write(planfmt.as_markdown(plan))
    else:
        sys.stdout.write(planfmt.as_text(plan, diffs=not args.no_diff))
    return EXIT_OK if plan.empty else EXIT_CHANGES
