"""``atlas rollout status|promote|abort|pause|resume DEPLOYMENT``: the blue-green
rollout of a Deployment on this host, as the state database records it, and the
requests a person makes of the reconciler running it (promote a rollout waiting with
``autoPromote: false`` or paused; pause one so it waits before promoting; abort one in
progress)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import reconciler
from atlas.commands.args import EXIT_ERROR, EXIT_OK, Subparsers, add_host, add_output
from atlas.commands.common import access_of, print_json


def register(sub: Subparsers) -> None:
    p = sub.add_parser("rollout", help="the blue-green rollout of a Deployment on this host")
    verbs = p.add_subparsers(dest="rollout_command", metavar="VERB")
    verbs.required = True
    for verb, helptext in (
        ("status", "the rollout in progress or the last one: phase, steps, analysis, result"),
        ("promote", "promote a rollout paused for a person (autoPromote: false)"),
        ("abort", "abort the rollout in progress: every replica back on the stable version"),
        ("pause", "let the rollout in progress analyse, but wait before promoting"),
        ("resume", "go on with a paused rollout (the same as promote)"),
    ):
        q = verbs.add_parser(verb, help=helptext, description=helptext)
        q.add_argument("deployment", metavar="DEPLOYMENT", help="the Deployment's component (api)")
        add_host(q)
        add_output(q)
        q.set_defaults(handler=status if verb == "status" else request)


def _when(at: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(at))) if at else "-"


def _record(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    store = access_of(args).store(must_exist=True)
    doc = store.rollouts().get(args.deployment)
    if doc is None:
        raise reconciler.UsageError(
            f"no rollout of {args.deployment!r} recorded on this host: a blueGreen "
            "Deployment records one when its version changes"
        )
    return store, doc


def status(args: argparse.Namespace) -> int:
    _, doc = _record(args)
    if args.output == "json":
        print_json(doc)
        return EXIT_OK
    result = doc.get("result") or "in progress"
    print(f"{doc['deployment']}: {doc['strategy']} {doc['from']} -> {doc['to']}: {result}")
    print(f"phase: {doc.get('phase')}   reason: {doc.get('reason') or '-'}")
    for step in doc.get("steps", []):
        print(f"  {_when(step['at'])}  {step['phase']:<9} {step['detail']}")
    for n, m in enumerate(doc.get("analysis", []), 1):
        values = ", ".join(f"{k} {v}" for k, v in m["values"].items())
        print(f"  analysis {n}: {'pass' if m['ok'] else 'FAIL'}  {values}")
    return EXIT_OK


def request(args: argparse.Namespace) -> int:
    store, doc = _record(args)
    if doc.get("result"):
        print(
            f"atlas rollout {args.rollout_command}: no rollout of {args.deployment!r} in "
            f"progress (the last one {doc['result']} at {_when(doc.get('finishedAt'))})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    store.request_rollout(args.deployment, args.rollout_command)
    print(f"{args.rollout_command} of {args.deployment} requested: the reconciler running "
          "the rollout acts on it within a second")  # fmt: skip
    return EXIT_OK
