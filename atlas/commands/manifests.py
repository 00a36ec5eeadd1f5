"""``atlas validate`` and ``atlas plan``: reading manifests without touching a host."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import reconciler
from atlas.commands.args import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    Subparsers,
    add_host,
    add_key_file,
    add_output,
)
from atlas.commands.common import access_of, print_json, shown_path
from seams import build


def register(sub: Subparsers) -> None:
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
    root = Path(args.path)
    if not root.is_dir():
        print(f"atlas: error: {args.path}: no such folder", file=sys.stderr)
        return EXIT_ERROR
    repo = reconciler.load_repository(root)
    own = build.version()  # a Deployment's version must be this Atlas, or have spec.releases
    if args.env:
        results = reconciler.validate_repository(repo, args.env, installed=own)
    elif repo.environments or repo.problems:
        results = reconciler.validate_repository(repo, installed=own)
    else:
        results = {}
    problems = reconciler.all_problems(results, repo)
    prefix = "" if args.path == "." else args.path
    warnings = [
        replace(w, file=shown_path(prefix, w.file)) for w in reconciler.all_warnings(results)
    ]
    if args.output != "json":
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    if args.output == "json":
        print_json(
            {
                "valid": not problems,
                "environments": {
                    env: {"valid": r.ok, "manifests": len(r.manifests)}
                    for env, r in results.items()
                },
                "errors": [{**p.as_dict(), "file": shown_path(prefix, p.file)} for p in problems],
                "warnings": [w.as_dict() for w in warnings],
            }
        )
    elif problems:
        for p in problems:
            print(replace(p, file=shown_path(prefix, p.file)))  # escaped, like every Problem
        bad = sorted(env for env, r in results.items() if not r.ok)
        print(
            f"{len(problems)} error(s); invalid environments: {', '.join(bad) or 'none'}",
            file=sys.stderr,
        )
    else:
        detail = ", ".join(f"{env} ({len(r.manifests)} manifests)" for env, r in results.items())
        print(f"valid: {detail}")
    return EXIT_ERROR if problems else EXIT_OK


def _print_review(review: reconciler.Review, output: str) -> None:
    if output == "json":
        print_json(
            {
                "base": review.base.sha,
                "head": review.head.sha,
                "environments": {
                    e.environment: (
                        reconciler.plan_dict(e.plan)
                        if e.plan is not None
                        else {"errors": [x.as_dict() for x in e.problems]}
                    )
                    for e in review.environments
                },
            }
        )
        return
    title = f"Atlas plan {review.base.short}..{review.head.short}"
    for e in review.environments:
        if output == "markdown":
            shown = e.plan or reconciler.Plan(e.environment, review.head, ())
            sys.stdout.write(reconciler.plan_markdown(shown, list(e.problems), title=title))
            sys.stdout.write("\n")
        elif e.plan is None:
            for x in e.problems:
                print(x)
        else:
            sys.stdout.write(reconciler.plan_text(e.plan))


def pr_plan(args: argparse.Namespace) -> int:
    review = reconciler.pull_request(
        access_of(args), args.repo, args.base, args.head, args.path, args.env
    )
    _print_review(review, args.output)
    if review.failed:
        return EXIT_ERROR
    return EXIT_CHANGES if review.changes else EXIT_OK
