"""``atlas reconcile``, ``atlas status``, ``atlas history``, ``atlas rollback``.

The glue between the command line and the reconciler: it reads the environment
(variables, the terminal), builds the seams (systemctl, httpx, the clock), and
hands them to ``reconciler.loop``. sd_notify for the reconciler's own unit comes
from ``atlas.notify`` here, because the reconciler never imports the platform.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
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


def register(sub: Any) -> None:
    p = sub.add_parser(
        "reconcile",
        help="converge this host to the manifests in git",
        description="Fetch, validate, render, plan, apply through systemd, verify health, "
        "and roll back "
        "a revision that fails. --dry-run prints the plan and changes nothing (exit 2 when "
        "it has changes). --watch keeps the host converged.",
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


# --------------------------------------------------------------------------- helpers


def _log_to_stderr(level: str, message: str) -> None:
    print(
        f"atlas: {level}: {message}" if level != "info" else f"atlas: {message}",
        file=sys.stderr,
        flush=True,
    )


def _store(layout: Any, must_exist: bool = False) -> Any:
    from reconciler.errors import UsageError
    from reconciler.state import StateStore, state_path

    path = state_path(layout.on_disk(layout.reconciler_dir))
    if must_exist and not path.exists():
        raise UsageError(
            f"no reconciler state at {path}: nothing was reconciled on this host "
            f"(scope {layout.scope}) yet"
        )
    return StateStore(path)


def _target(args: argparse.Namespace, store: Any) -> Any:
    """The target from the arguments, falling back to what the last reconcile used."""
    from reconciler import pipeline
    from reconciler.errors import UsageError

    last = store.get("target", {}) if store is not None else {}
    env = args.env or last.get("environment")
    if not env:
        raise UsageError("--env is required (no earlier reconcile on this host to take it from)")
    repo = args.repo or last.get("repo") or "."
    ref = args.ref if args.ref is not None else (last.get("ref") if not args.repo else None)
    path = args.path or last.get("path") or "."
    return pipeline.Target(repo, ref, path, env)


def _runtime(layout: Any) -> Any:
    from reconciler.host.runtime import Systemctl

    return Systemctl(layout.scope, os.environ)


def _kill_switch() -> Callable[[Any], None] | None:
    """ATLAS_DEBUG_KILL_AFTER_ACTION=N: SIGKILL this process right after the Nth action.

    A debugging aid (and how the crash-safety tests kill a reconcile between any two
    actions); never set in production.
    """
    raw = os.environ.get("ATLAS_DEBUG_KILL_AFTER_ACTION")
    if not raw or not raw.isdigit():
        return None
    remaining = [int(raw)]

    def after(_action: Any) -> None:
        remaining[0] -= 1
        if remaining[0] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)

    return after


def _reconciler(args: argparse.Namespace, layout: Any, store: Any, target: Any, wait: float) -> Any:
    from atlas.commands.common import render_context, secrets_source
    from reconciler.host.probe import HttpxProbe
    from reconciler.loop import Options, Reconciler
    from reconciler.metrics import ReconcilerMetrics
    from seams.clock import SystemClock

    ctx = render_context(args, layout, target.invocation)
    return Reconciler(
        target,
        ctx,
        _runtime(layout),
        store,
        lambda env: secrets_source(args, layout, env),
        HttpxProbe(),
        SystemClock(),
        ReconcilerMetrics(),
        _log_to_stderr,
        Options(
            self_heal=not getattr(args, "no_self_heal", False),
            lock_wait=wait,
            on_action=_kill_switch(),
            self_unit=os.environ.get("ATLAS_UNIT") or None,
        ),
    )


def _result_dict(result: Any) -> dict[str, Any]:
    from reconciler import planfmt

    return {
        "result": result.result,
        "ok": result.ok,
        "revision": result.revision,
        "reason": result.reason,
        "plan": planfmt.as_dict(result.plan) if result.plan is not None else None,
        "drift": [d.as_dict() for d in result.drift],
    }


def _print_result(result: Any, output: str) -> None:
    from reconciler import planfmt

    if output == "json":
        print(json.dumps(_result_dict(result), indent=2))
        return
    if result.plan is not None and not result.plan.empty:
        sys.stdout.write(planfmt.as_text(result.plan, diffs=False))
    for item in result.drift:
        print(f"drift: {item.kind} {item.target}: {item.detail}")
    print(f"{result.result}: {result.revision[:12] or '-'} {result.reason}".rstrip())


# --------------------------------------------------------------------------- reconcile


def reconcile(args: argparse.Namespace) -> int:
    from atlas.commands.common import layout_of

    layout = layout_of(args)
    if args.dry_run:
        return _dry_run(args, layout)
    from reconciler.quantities import parse_duration

    store = _store(layout)
    target = _target(args, store)
    store.put(
        "target",
        {
            "repo": target.invocation.repo,
            "ref": target.ref,
            "path": target.path,
            "environment": target.environment,
        },
    )
    if args.watch:
        wait = 300.0 if args.wait is None else args.wait
        return _watch(args, layout, store, target, parse_duration(args.interval), wait)
    rec = _reconciler(args, layout, store, target, 0.0 if args.wait is None else args.wait)
    result = rec.cycle("manual")
    _print_result(result, args.output)
    return EXIT_OK if result.ok else EXIT_ERROR


def _dry_run(args: argparse.Namespace, layout: Any) -> int:
    from atlas.commands.common import render_context, secrets_source
    from reconciler import pipeline, planfmt
    from reconciler.apply import carried_over
    from reconciler.errors import ReconcilerError
    from reconciler.inventory import Inventory
    from reconciler.state import StateStore, state_path

    store = StateStore.existing(state_path(layout.on_disk(layout.reconciler_dir)))
    inventory, pending = Inventory(), []
    try:  # read what the plan needs and let go of the database at once
        target = _target(args, store)
        if store is not None:
            inventory, pending = store.inventory(), [r for _, _, r in store.journal_pending()]
    finally:
        if store is not None:
            store.close()
    cache = layout.on_disk(layout.reconciler_dir) / "git"
    if not cache.is_dir():  # a dry run leaves no trace on a host that has none
        scratch = tempfile.TemporaryDirectory(prefix="atlas-dry-run-")
        cache = Path(scratch.name)
    co = pipeline.fetch(target, cache)
    ctx = render_context(args, layout, target.invocation)
    prepared = pipeline.prepare_checkout(
        co, target.environment, ctx, secrets_source(args, layout, target.environment)
    )
    runtime = None
    if str(args.root) == "/":
        candidate = _runtime(layout)
        try:
            candidate.system_state()
            runtime = candidate
        except ReconcilerError:
            runtime = None  # no manager to ask: unit states unknown
    plan, _ = pipeline.plan_for(prepared, ctx, inventory, runtime)
    plan = carried_over(plan, pending, prepared.rendered)
    if args.output == "json":
        sys.stdout.write(planfmt.as_json(plan))
    elif args.output == "markdown":
        sys.stdout.write(planfmt.as_markdown(plan))
    else:
        sys.stdout.write(planfmt.as_text(plan, diffs=not args.no_diff))
    return EXIT_OK if plan.empty else EXIT_CHANGES


def _watch(
    args: argparse.Namespace, layout: Any, store: Any, target: Any, interval: float, wait: float
) -> int:
    from reconciler.errors import UsageError
    from reconciler.watch.refs import RefsWatcher, git_dir
    from reconciler.watch.server import ReconcilerServer
    from seams.notify import Notifier

    rec = _reconciler(args, layout, store, target, wait)
    stop, wake = threading.Event(), threading.Event()
    secret: bytes | None = None
    if args.webhook_secret_env:
        value = os.environ.get(args.webhook_secret_env)
        if not value:
            raise UsageError(
                f"--webhook-secret-env {args.webhook_secret_env}: the variable is not set"
            )
        secret = value.encode()
    host, _, port = args.metrics_addr.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--metrics-addr {args.metrics_addr!r}: expected HOST:PORT")

    def healthy() -> bool:
        return bool(time.monotonic() - rec.last_cycle_end < 3 * interval + 600)

    def pushed(reason: str) -> None:
        rec.store.event("info", "push", f"reconcile requested by {reason}")
        wake.set()

    try:
        server = ReconcilerServer(
            host.strip("[]"), int(port), rec.metrics.exposition, healthy, pushed, secret
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.metrics_addr}: {exc.strerror}") from exc
    server.start()
    watcher = None
    repo_path = Path(target.repo)
    if repo_path.exists() and git_dir(repo_path) is not None:
        watcher = RefsWatcher(repo_path, wake.set)
        watcher.start()
    notifier = Notifier.from_environ()

    def shutdown(*_: object) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGHUP, lambda *_: wake.set())
    ready = threading.Event()

    def on_cycle(result: Any) -> None:
        level = "info" if result.ok else "error"
        _log_to_stderr(level, f"{result.result} {result.revision[:12]} {result.reason}".rstrip())
        if not ready.is_set():
            notifier.ready(f"watching {target.repo}")
            ready.set()
        notifier.status(f"{result.result} {result.revision[:12]}")

    if notifier.watchdog_interval:

        def ping() -> None:
            while not stop.wait(notifier.watchdog_interval or 10):
                if healthy():
                    notifier.watchdog()

        threading.Thread(target=ping, daemon=True).start()
    _log_to_stderr(
        "info",
        f"watching {target.repo} ({target.ref or 'HEAD'}) for {target.environment}; "
        f"metrics on http://{args.metrics_addr}/metrics",
    )
    try:
        rec.watch(stop, wake, interval, on_cycle)
    finally:
        notifier.stopping()
        server.stop()
        if watcher:
            watcher.stop()
    return EXIT_OK


# ----------------------------------------------------------------- status, history, rollback


def status_report(
    layout: Any, store: Any, env: str | None, runtime: Any, probe: Any
) -> dict[str, Any]:
    """What ``atlas status`` shows, as data."""
    from reconciler.errors import ReconcilerError
    from reconciler.loop import observe_for_status

    env = env or store.get("target", {}).get("environment")
    applied = store.last_applied(env) if env else None
    attempt = store.last_attempt(env) if env else None
    desired = store.get("desired_revision", {})
    try:
        observed, drift = observe_for_status(layout, store, runtime)
        manager = True
    except ReconcilerError:
        observed, drift = observe_for_status(layout, store, None)
        manager = False
    units = []
    for name, unit in sorted(store.inventory().units.items()):
        state = observed.unit(name)
        health = None
        if unit.probe and state.running:
            try:
                code = probe.status(unit.probe, 2.0)
                health = {"url": unit.probe, "status": code, "ok": 200 <= code < 300}
            except OSError as exc:
                health = {"url": unit.probe, "status": None, "ok": False, "error": str(exc)[:200]}
        units.append(
            {
                "unit": name,
                "component": unit.component,
                "active": state.active_state,
                "sub": state.sub_state,
                "enabled": state.enabled,
                "pid": state.main_pid,
                "restarts": state.n_restarts,
                "expected_running": unit.start,
                "healthy": (state.running or not unit.start) and (health is None or health["ok"]),
                "health": health,
            }
        )
    if (
        attempt is not None
        and attempt.outcome in ("failed", "invalid")
        and attempt.sha == desired.get("sha")
    ):
        sync = "Failed"
    elif applied is None or desired.get("sha") != applied.sha or drift:
        sync = "OutOfSync"
    else:
        sync = "Synced"
    return {
        "environment": env,
        "scope": layout.scope,
        "sync": sync,
        "desired_revision": desired or None,
        "applied_revision": applied.as_dict() if applied else None,
        "last_attempt": attempt.as_dict() if attempt else None,
        "drift": [d.as_dict() for d in drift],
        "manager_reachable": manager,
        "units": units,
    }


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def status(args: argparse.Namespace) -> int:
    from atlas.commands.common import layout_of, print_json
    from reconciler.host.probe import HttpxProbe

    layout = layout_of(args)
    store = _store(layout, must_exist=True)
    report = status_report(layout, store, args.env, _runtime(layout), HttpxProbe())
    if args.output == "json":
        print_json(report)
        return EXIT_OK
    desired, applied, attempt = (
        report["desired_revision"],
        report["applied_revision"],
        report["last_attempt"],
    )
    print(f"Environment:      {report['environment']} (scope {report['scope']})")
    print(f"Sync status:      {report['sync']}")
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
    if report["drift"]:
        print("Drift:")
        for d in report["drift"]:
            print(f"  {d['kind']:<14} {d['target']}  ({d['detail']})")
    else:
        print("Drift:            none")
    if not report["manager_reachable"]:
        print("Units:            the systemd manager cannot be reached")
    print("Units:")
    for u in report["units"]:
        health = ""
        if u["health"]:
            h = u["health"]
            health = f"  {h['url']} → {h['status'] if h['status'] is not None else h.get('error')}"
        mark = "ok " if u["healthy"] else "BAD"
        print(f"  {mark} {u['unit']:<28} {u['active']}/{u['sub']}{health}")
    return EXIT_OK if report["sync"] == "Synced" else EXIT_ERROR


def history(args: argparse.Namespace) -> int:
    from atlas.commands.common import layout_of, print_json

    layout = layout_of(args)
    store = _store(layout, must_exist=True)
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
    from atlas.commands.common import layout_of

    layout = layout_of(args)
    store = _store(layout, must_exist=True)
    target = _target(args, store)
    rec = _reconciler(args, layout, store, target, args.wait)
    result = rec.rollback(args.to)
    _print_result(result, args.output)
    return EXIT_OK if result.result == "rolled-back" else EXIT_ERROR
