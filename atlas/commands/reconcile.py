"""``atlas reconcile``, ``atlas status``, ``atlas history``, ``atlas rollback``.

Argument parsing and printing only: what each verb does is a function of
``reconciler.compose`` (through the ``reconciler`` face), which builds the real seams
for this host from the arguments and the process environment passed in.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

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
from atlas.commands.common import access_of, print_json
from atlas.commands.progress import TerminalProgress
from seams import journal


def add_target(p: argparse.ArgumentParser, env_required: bool = True) -> None:
    p.add_argument(
        "--repo",
        default=None,
        help="git repository URL or path, or a plain folder (default: the last one used, else .)",
    )
    p.add_argument("--ref", default=None, help="branch, tag or commit (default: the remote's HEAD)")
    p.add_argument(
        "--path", default=None, help="folder of the manifests inside the repository (default .)"
    )
    p.add_argument("--env", required=env_required, default=None, help="the environment")


def _register_reconcile(sub: Subparsers) -> None:
    p = sub.add_parser(
        "reconcile",
        help="converge this host to the manifests in git",
        description="Fetch, validate, render, plan, apply through systemd, verify health, "
        "and roll back a revision that fails. --dry-run prints the plan and changes nothing "
        "(exit 2 when it has changes). --watch keeps the host converged.",
    )
    add_target(p)
    add_host(p)
    add_key_file(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    mode.add_argument("--once", action="store_true", help="one reconcile (the default)")
    mode.add_argument(
        "--watch", action="store_true", help="reconcile on every new commit, push and interval"
    )
    p.add_argument("--interval", default="60s", help="--watch: time between polls (default 60s)")
    p.add_argument(
        "--metrics-addr",
        default="127.0.0.1:9110",
        help="--watch: where to serve /metrics, /healthz and POST /hooks/git",
    )
    p.add_argument(
        "--webhook-secret-env",
        default=None,
        help="--watch: environment variable holding the secret that signs POST /hooks/git",
    )
    p.add_argument("--no-self-heal", action="store_true", help="report drift but do not correct it")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        help="seconds to wait for another reconcile to finish (default: 0 --once, 300 --watch)",
    )
    p.add_argument("--no-diff", action="store_true", help="leave file diffs out of the text plan")
    add_output(p, "text", "json", "markdown")
    p.set_defaults(handler=reconcile)


def register(sub: Subparsers) -> None:
    _register_reconcile(sub)
    p = sub.add_parser("status", help="desired and applied revision, sync status, drift, units")
    p.add_argument("--env", default=None, help="the environment (default: the one last reconciled)")
    add_host(p)
    add_output(p)
    p.set_defaults(handler=status)

    p = sub.add_parser("history", help="every revision the reconciler attempted, with outcomes")
    p.add_argument("--env", default=None, help="only this environment")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--events", action="store_true", help="the event log instead of revisions")
    add_host(p)
    add_output(p)
    p.set_defaults(handler=history)

    p = sub.add_parser("rollback", help="re-apply the last healthy revision before the current one")
    p.add_argument("--to", default=None, metavar="SHA", help="an earlier applied revision (prefix)")
    add_target(p, env_required=False)
    add_host(p)
    add_key_file(p)
    p.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for a running reconcile"
    )
    add_output(p)
    p.set_defaults(handler=rollback)


# --------------------------------------------------------------------------- printing


PROGRESS = TerminalProgress()  # on stderr, when it is a terminal


def log_to_stderr(level: str, message: str) -> None:
    """The reconciler's ``Log``: priority-prefixed like the services' logs (atlas.logs)."""
    PROGRESS.clear()
    mark = journal.prefix(level, journal.stream_is_journal(sys.stderr))
    print(
        f"{mark}atlas: {level}: {message}" if level != "info" else f"{mark}atlas: {message}",
        file=sys.stderr,
        flush=True,
    )


def _target_args(args: argparse.Namespace) -> reconciler.TargetArgs:
    return reconciler.TargetArgs(args.repo, args.ref, args.path, args.env)


def _print_result(result: reconciler.CycleResult, output: str) -> None:
    if output == "json":
        print_json(result.as_dict())
        return
    if result.plan is not None and not result.plan.empty:
        sys.stdout.write(reconciler.plan_text(result.plan, diffs=False))
    for item in result.drift:
        print(f"drift: {item.kind} {item.target}: {item.detail}")
    print(f"{result.outcome}: {result.revision[:12] or '-'} {result.reason}".rstrip())


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


# --------------------------------------------------------------------------- verbs


def reconcile(
    args: argparse.Namespace, on_action: Callable[[reconciler.Action], None] | None = None
) -> int:
    """``on_action`` is called after each applied action (a test driver kills there)."""
    access = access_of(args)
    if args.dry_run:
        plan = reconciler.dry_run(access, _target_args(args))
        if args.output == "json":
            sys.stdout.write(reconciler.plan_json(plan))
        elif args.output == "markdown":
            sys.stdout.write(reconciler.plan_markdown(plan))
        else:
            sys.stdout.write(reconciler.plan_text(plan, diffs=not args.no_diff))
        return EXIT_OK if plan.empty else EXIT_CHANGES
    self_heal = not args.no_self_heal
    if args.watch:
        host, _, port = args.metrics_addr.rpartition(":")
        if not host or not port.isdigit():
            raise reconciler.UsageError(f"--metrics-addr {args.metrics_addr!r}: expected HOST:PORT")
        settings = reconciler.DaemonSettings(
            reconciler.parse_duration(args.interval), host, int(port), _webhook_secret(args)
        )
        wait = 300.0 if args.wait is None else args.wait
        reconciler.run_daemon(
            access, _target_args(args), settings,
            self_heal=self_heal, lock_wait=wait, log=log_to_stderr,
        )  # fmt: skip
        return EXIT_OK
    result = reconciler.reconcile_once(
        access,
        _target_args(args),
        self_heal=self_heal,
        lock_wait=0.0 if args.wait is None else args.wait,
        log=log_to_stderr,
        on_action=on_action,
        on_wait=PROGRESS.waiting,
    )
    PROGRESS.clear()
    _print_result(result, args.output)
    return EXIT_OK if result.ok else EXIT_ERROR


def _webhook_secret(args: argparse.Namespace) -> bytes | None:
    if not args.webhook_secret_env:
        return None
    value = os.environ.get(args.webhook_secret_env)
    if not value:
        raise reconciler.UsageError(
            f"--webhook-secret-env {args.webhook_secret_env}: the variable is not set"
        )
    return value.encode()


def _print_status(report: reconciler.StatusReport) -> None:
    desired, applied, attempt = (
        report.desired_revision,
        report.applied_revision,
        report.last_attempt,
    )
    print(f"Environment:      {report.environment} (scope {report.scope})")
    print(f"Sync status:      {report.sync}")
    if desired:
        print(
            f"Desired revision: {desired['sha'][:12]} {desired.get('ref') or ''} "
            f"{desired.get('subject') or ''}".rstrip()
        )
    if applied:
        print(
            f"Applied revision: {applied['sha'][:12]} at {_when(applied['finished_at'])}: "
            f"{applied['reason']}"
        )
    if attempt and (not applied or attempt["id"] != applied["id"]):
        print(
            f"Last attempt:     {attempt['sha'][:12]} {attempt['outcome']} at "
            f"{_when(attempt['finished_at'] or attempt['started_at'])}: {attempt['reason']}"
        )
    if report.last_fetch_error:
        print(f"Last fetch:       failed: {report.last_fetch_error}")
    if report.drift:
        print("Drift:")
        for d in report.drift:
            print(f"  {d['kind']:<14} {d['target']}  ({d['detail']})")
    else:
        print("Drift:            none")
    if not report.manager_reachable:
        print("Units:            the systemd manager cannot be reached")
    print("Units:")
    for u in report.units:
        health = ""
        if u.health:
            h = u.health
            health = f"  {h['url']} → {h['status'] if h['status'] is not None else h.get('error')}"
        mark = "ok " if u.healthy else "BAD"
        print(f"  {mark} {u.unit:<28} {u.active}/{u.sub}{health}")


def status(args: argparse.Namespace) -> int:
    report = reconciler.status_report(access_of(args), args.env)
    if args.output == "json":
        print_json(report.as_dict())
        return EXIT_OK
    _print_status(report)
    return EXIT_OK if report.sync is reconciler.SyncStatus.SYNCED else EXIT_ERROR


def history(args: argparse.Namespace) -> int:
    store = access_of(args).store(must_exist=True)
    if args.events:
        events = store.events(limit=args.limit)
        if args.output == "json":
            print_json([e.as_dict() for e in events])
        else:
            for e in events:
                print(f"{_when(e.at)} {e.level:<7} {e.kind:<11} {e.message}")
        return EXIT_OK
    records = store.history(args.env, args.limit)
    if args.output == "json":
        print_json([r.as_dict() for r in records])
        return EXIT_OK
    print(f"{'started':<19}  {'env':<12} {'revision':<12} {'outcome':<11} {'trigger':<22} reason")
    for r in records:
        print(
            f"{_when(r.started_at):<19}  {r.environment:<12} {r.sha[:12]:<12} {r.outcome:<11} "
            f"{r.trigger[:22]:<22} {r.reason}"
        )
    return EXIT_OK


def rollback(args: argparse.Namespace) -> int:
    result = reconciler.rollback(
        access_of(args), _target_args(args), args.to, lock_wait=args.wait, log=log_to_stderr
    )
    _print_result(result, args.output)
    return EXIT_OK if result.outcome is reconciler.Outcome.ROLLED_BACK else EXIT_ERROR
