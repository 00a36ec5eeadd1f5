"""The platform's services and their operator verbs:

  atlas core --config core.json [--instance N]       the ingestion worker (atlas-core)
  atlas api --config api.json [--instance N]         the HTTP API (atlas-api)
  atlas services run --config services.json          background jobs (atlas-services)
  atlas dlq list|retry|purge                         the dead-letter queue

The operator verbs find the rendered config through --scope/--root (DESIGN.md §4)
unless --config names it; paths inside a config are host paths, resolved under
--root. What the verbs do is in the platform packages (``atlas.core``,
``atlas.resilience.dlq``, ``atlas.services``); this module parses the arguments and
prints the results.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from atlas.commands.args import EXIT_ERROR, EXIT_OK, Subparsers, add_host, add_output
from atlas.commands.common import layout_of, print_json
from atlas.errors import ConfigError
from reconciler import HostLayout, parse_duration

if TYPE_CHECKING:
    from atlas.core.settings import CoreSettings
    from atlas.core.store import Store
    from atlas.resilience.dlq import Selection


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _duration(text: str) -> float:

    try:
        return parse_duration(text)
    except Exception as exc:
        raise argparse.ArgumentTypeError(f"expected a duration like 30m or 7d: {text!r}") from exc


def register(sub: Subparsers) -> None:
    _register_services(sub)
    _register_dlq(sub)


def _register_services(sub: Subparsers) -> None:
    for component, helptext in (
        ("core", "run the ingestion worker (systemd unit atlas-core)"),
        ("api", "run the HTTP API (systemd unit atlas-api)"),
    ):
        p = sub.add_parser(component, help=helptext, description=helptext)
        p.add_argument("--config", type=Path, required=True, help=f"rendered {component}.json")
        p.add_argument(
            "--instance", type=_positive, default=None, help="replica number N of 1..replicas"
        )
        p.set_defaults(handler=run_core if component == "core" else run_api)

    services = sub.add_parser("services", help="background jobs (systemd unit atlas-services)")
    services_sub = services.add_subparsers(dest="services_command", metavar="VERB")
    services_sub.required = True
    p = services_sub.add_parser("run", help="dead-letter sweep, backup and database upkeep, once")
    p.add_argument("--config", type=Path, required=True, help="rendered services.json")
    p.set_defaults(handler=run_services)


def _verbs(
    sub: Subparsers, group: str, help_text: str, config: str, verbs: tuple[tuple[str, str], ...]
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``atlas GROUP VERB`` parsers, each with --config (``config``), the host and -o."""
    parser = sub.add_parser(group, help=help_text)
    verbs_sub = parser.add_subparsers(dest=f"{group}_command", metavar="VERB")
    verbs_sub.required = True
    for verb, helptext in verbs:
        p: argparse.ArgumentParser = verbs_sub.add_parser(verb, help=helptext, description=helptext)
        p.add_argument("--config", type=Path, default=None, help=f"{config} (default: per scope)")
        add_host(p)
        add_output(p)
        yield verb, p


def _register_dlq(sub: Subparsers) -> None:
    verbs = (
        ("list", "list dead letters"),
        ("retry", "fetch the sources of dead letters again, now"),
        ("purge", "forget dead letters (their sources keep being scheduled)"),
    )
    handlers = {"list": dlq_list, "retry": dlq_retry, "purge": dlq_purge}
    for verb, p in _verbs(
        sub, "dlq", "the dead-letter queue of failed fetches", "rendered core.json", verbs
    ):
        p.add_argument(
            "--source", action="append", default=[], help="only this source (repeatable)"
        )
        if verb != "list":
            p.add_argument("ids", nargs="*", type=_positive, help="dead-letter ids")
            p.add_argument("--all", action="store_true", help="every dead letter")
        if verb == "purge":
            p.add_argument(
                "--older-than", type=_duration, default=None, help="last failure before (e.g. 7d)"
            )
        p.set_defaults(handler=handlers[verb])


# ---------------------------------------------------------------- services


def run_core(args: argparse.Namespace) -> int:
    from atlas.core.service import run

    return run(args.config, args.instance)


def run_api(args: argparse.Namespace) -> int:
    from atlas.api.server import run

    return run(args.config, args.instance)


def run_services(args: argparse.Namespace) -> int:
    from atlas.services.run import run

    return run(args.config)


# ---------------------------------------------------------------- dead letters


def _config_path(args: argparse.Namespace, name: str) -> tuple[Path, HostLayout]:

    layout = layout_of(args)
    path = args.config or layout.on_disk(layout.config_dir / name)
    return path, layout


def _core(args: argparse.Namespace) -> tuple[CoreSettings, Store]:
    """(core settings, an open Store) for the operator verbs."""
    from atlas.core import settings as core_settings
    from atlas.core.store import open_existing_store

    path, layout = _config_path(args, "core.json")
    settings = core_settings.load(path)
    return settings, open_existing_store(
        layout.on_disk(PurePosixPath(settings.database)), settings.busy_timeout_s
    )


def _selection(args: argparse.Namespace, verb: str) -> Selection:
    from atlas.resilience.dlq import Selection

    chosen = Selection(
        tuple(getattr(args, "ids", [])),
        tuple(args.source),
        getattr(args, "all", False),
        getattr(args, "older_than", None),
    )
    if verb != "list" and chosen.empty:
        raise ConfigError(f"dlq {verb}: say which: dead-letter IDs, --source NAME or --all")
    return chosen


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def dlq_list(args: argparse.Namespace) -> int:
    from atlas.resilience import dlq

    _, store = _core(args)
    try:
        entries = dlq.select(store.conn, _selection(args, "list"), time.time())
    finally:
        store.close()
    if args.output == "json":
        print_json({"deadLetters": [e.as_dict() for e in entries]})
        return EXIT_OK
    if not entries:
        print("the dead-letter queue is empty")
        return EXIT_OK
    now = time.time()
    print(f"{'ID':>5}  {'SOURCE':<24} {'KIND':<9} {'TRIES':>5}  {'LAST':>5}  ERROR")
    for e in entries:
        print(
            f"{e.id:>5}  {e.source:<24} {e.error_kind:<9} {e.attempts:>5}  "
            f"{_age(now - e.last_failed_at):>5}  {e.error}"
        )
    return EXIT_OK


def dlq_retry(args: argparse.Namespace) -> int:
    from atlas.core.oneshot import fetch_now
    from atlas.resilience import dlq

    settings, store = _core(args)
    try:
        entries = dlq.select(store.conn, _selection(args, "retry"), time.time())
        outcomes = fetch_now(settings, store, [e.source for e in entries])
    finally:
        store.close()
    if args.output == "json":
        print_json({"retried": [o.__dict__ for o in outcomes]})
    else:
        if not outcomes:
            print("nothing to retry")
        for o in outcomes:
            print(f"{o.source}: {'resolved' if o.ok else 'still failing'}: {o.message}")
    failing = [o for o in outcomes if not o.ok]
    if failing and args.output != "json":
        print(f"atlas: {len(failing)} source(s) still failing", file=sys.stderr)
    return EXIT_ERROR if failing else EXIT_OK


def dlq_purge(args: argparse.Namespace) -> int:
    from atlas.resilience import dlq

    _, store = _core(args)
    try:
        removed, entries = dlq.purge(store.conn, _selection(args, "purge"), time.time())
    finally:
        store.close()
    if args.output == "json":
        print_json({"purged": removed, "sources": sorted({e.source for e in entries})})
    else:
        print(f"purged {removed} dead letter(s); their sources stay scheduled")
    return EXIT_OK
