"""``atlas validate`` and ``atlas plan``: reading manifests without touching a host."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from atlas.commands.args import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    add_host,
    add_key_file,
    add_output,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="validate a manifests repository",
        description="Validate the manifests in PATH (every environment, or --env).",
    )
    p.add_argument(
        "path", nargs="?", default=".", help="the manifests repository folder (default .)"
    )
    p.add_argument(
        "--env",
        action="append",
        default=None,
        help="environment to validate (repeatable; default: all)",
    )
    add_output(p)
    p.set_defaults(handler=validate)

    p = sub.add_parser(
        "plan",
        help="what merging a branch would change (for pull requests)",
        description="Plan the change from --base to --head of a git repository, "
        "as a reviewer would want to see it in a pull request.",
    )
    p.add_argument("--repo", required=True, help="git repository path or URL")
    p.add_argument("--base", required=True, help="the ref merged into (e.g. main)")
    p.add_argument("--head", required=True, help="the ref proposed (e.g. the PR branch)")
    p.add_argument("--path", default=".", help="folder of the manifests inside the repository")
    p.add_argument(
        "--env",
        action="append",
        default=None,
        help="environment to plan (repeatable; default: all environments of head)",
    )
    add_key_file(p)
    add_host(p)
    add_output(p, "markdown", "text", "json")
    p.set_defaults(handler=pr_plan)


def validate(args: argparse.Namespace) -> int:
    from atlas.commands.common import print_json, shown_path
    from reconciler.manifests.assemble import all_problems, validate_repository
    from reconciler.manifests.load import load_repository

    root = Path(args.path)
    if not root.is_dir():
        print(f"atlas: error: {args.path}: no such folder", file=sys.stderr)
        return EXIT_ERROR
    repo = load_repository(root)
    if args.env:
        results = validate_repository(repo, args.env)
    else:
        results = validate_repository(repo) if repo.environments or repo.problems else {}
    problems = all_problems(results, repo)
    prefix = "" if args.path == "." else args.path
    if args.output == "json":
        print_json(
            {
                "valid": not problems,
                "environments": {
                    env: {"valid": r.ok, "manifests": len(r.manifests)}
                    for env, r in results.items()
                },
                "errors": [{**p.as_dict(), "file": shown_path(prefix, p.file)} for p in problems],
            }
        )
    elif problems:
        for p in problems:
            where = (
                f"{shown_path(prefix, p.file)}:{p.line}" if p.line else shown_path(prefix, p.file)
            )
            print(f"{where}: {p.ref}: {p.message}" if p.ref else f"{where}: {p.message}")
        bad = sorted(env for env, r in results.items() if not r.ok)
        print(
            f"{len(problems)} error(s); invalid environments: {', '.join(bad) or 'none'}",
            file=sys.stderr,
        )
    else:
        detail = ", ".join(f"{env} ({len(r.manifests)} manifests)" for env, r in results.items())
        print(f"valid: {detail}")
    return EXIT_ERROR if problems else EXIT_OK


def pr_plan(args: argparse.Namespace) -> int:
    from atlas.commands.common import layout_of, print_json, render_context, secrets_source
    from reconciler import planfmt
    from reconciler.build import build
    from reconciler.errors import Problem, UsageError
    from reconciler.inventory import Inventory
    from reconciler.manifests.assemble import assemble, environment_names
    from reconciler.manifests.load import load_repository
    from reconciler.model import ReconcilerInvocation
    from reconciler.observe import Observed, simulated
    from reconciler.plan import plan
    from reconciler.render.components import render
    from reconciler.render.desired import Rendered
    from reconciler.secrets.sources import SealedSecrets
    from reconciler.source import GitMirror, _safe_subpath

    layout = layout_of(args)
    with tempfile.TemporaryDirectory(prefix="atlas-plan-") as tmp:
        mirror = GitMirror(
            str(Path(args.repo).resolve()) if Path(args.repo).exists() else args.repo, Path(tmp)
        )
        mirror.fetch()
        base_rev, head_rev = mirror.resolve(args.base), mirror.resolve(args.head)
        base_root = _safe_subpath(mirror.export(base_rev.sha), args.path)
        head_root = _safe_subpath(mirror.export(head_rev.sha), args.path)
        base_repo, head_repo = load_repository(base_root), load_repository(head_root)
        envs = args.env or environment_names(head_repo)
        if len(envs) > 1 and (args.key_file or os.environ.get("ATLAS_SECRETS_KEY_FILE")):
            raise UsageError(
                "a key file belongs to one environment: plan that one with --env, or rely on "
                "each environment's default key file (<config dir>/keys/<env>.key)"
            )
        invocation = ReconcilerInvocation(args.repo, args.base, args.path)
        ctx = render_context(args, layout, invocation)
        sections: list[tuple[str, Any, list[Problem]]] = []
        failed = False
        for env in envs:
            secrets = secrets_source(args, layout, env) or SealedSecrets()
            head = assemble(head_repo, env)
            if head.problems:
                failed = True
                sections.append((env, None, list(head.problems)))
                continue
            base = assemble(base_repo, env) if env in base_repo.environments else None
            if base is not None and not base.problems:
                base_rendered = render(build(base, base_rev, base_root, secrets), ctx)
                observed = simulated(base_rendered)
                inventory = Inventory.of(base_rendered, os.urandom(32))
            else:
                observed = Observed({}, {}, {})
                inventory = Inventory()
                base_rendered = Rendered((), (), ())
            head_rendered = render(build(head, head_rev, head_root, secrets), ctx)
            sections.append(
                (
                    env,
                    plan(head_rendered, observed, inventory, environment=env, revision=head_rev),
                    [],
                )
            )
    changes = any(p is not None and not p.empty for _, p, _ in sections)
    if args.output == "json":
        print_json(
            {
                "base": base_rev.sha,
                "head": head_rev.sha,
                "environments": {
                    env: (
                        planfmt.as_dict(p)
                        if p is not None
                        else {"errors": [x.as_dict() for x in probs]}
                    )
                    for env, p, probs in sections
                },
            }
        )
    else:
        from reconciler.plan import Plan

        for env, p, probs in sections:
            if args.output == "markdown":
                shown = p if p is not None else Plan(env, head_rev, ())
                sys.stdout.write(
                    planfmt.as_markdown(
                        shown, probs, title=f"Atlas plan {base_rev.short}..{head_rev.short}"
                    )
                )
                sys.stdout.write("\n")
            elif p is None:
                for x in probs:
                    print(x)
            else:
                sys.stdout.write(planfmt.as_text(p))
    if failed:
        return EXIT_ERROR
    return EXIT_CHANGES if changes else EXIT_OK
