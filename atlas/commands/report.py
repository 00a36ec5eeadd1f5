"""``atlas report``: performance over a window, from this host's history or from a
Prometheus (``--prometheus URL``): ingestion throughput and success ratio, the
failing sources, reconciles and rollbacks, drift, alerts fired and for how long, and
(from Prometheus) API request rate, error ratio and latency."""

from __future__ import annotations

import argparse
import sys
import time

import reconciler
from atlas.commands.args import EXIT_ERROR, EXIT_OK, Subparsers, add_host, add_output
from atlas.commands.common import access_of, print_json


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "report",
        help="performance over a window: ingestion, sources, reconciles, alerts",
        description="Performance analysis from the history Atlas keeps on this host, or "
        "from a Prometheus that scrapes it.",
    )
    p.add_argument(
        "--since", default="24h", help="how far back, as a duration (30m, 24h, 7d; default 24h)"
    )
    p.add_argument(
        "--prometheus",
        metavar="URL",
        default=None,
        help="read the figures from this Prometheus instead of this host's databases",
    )
    add_host(p)
    add_output(p, "text", "json", "markdown", "html")
    p.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    from atlas.commands import report_history, report_render

    try:
        window = reconciler.parse_duration(args.since)
    except ValueError:
        print(
            f"atlas: error: --since {args.since!r}: expected a duration like 30m, 24h, 7d",
            file=sys.stderr,
        )
        return EXIT_ERROR
    until = time.time()
    since = until - window
    if args.prometheus:
        from atlas.commands import report_prom

        doc = report_prom.report(args.prometheus, since, until)
    else:
        doc = report_history.report(access_of(args), since, until)
    doc = {"window": {"since": since, "until": until, "seconds": window}, **doc}
    if args.output == "json":
        print_json(doc)
    else:
        render = {"text": report_render.text, "markdown": report_render.markdown}
        print(render.get(args.output, report_render.page)(doc), end="")
    return EXIT_OK
