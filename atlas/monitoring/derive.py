"""What the agent reads out of two consecutive scrapes of a component (pure).

From the component's own series (names agreed with the platform, issue 4):

* ``*http_requests_total{status|code}`` (counter) →
  ``atlas_component_http_requests_per_second``, ``…_http_errors_per_second`` (5xx)
  and ``…_http_error_ratio``;
* ``*http_request_duration_seconds`` (histogram) →
  ``atlas_component_http_request_duration_seconds{quantile}`` (0.5, 0.9, 0.99);
* ``atlas_ingest_items_total{result}`` → ``atlas_component_ingest_items_per_second``
  and ``…_ingest_success_ratio`` (results error/failed/failure count as failures);
* ``atlas_ingest_fetch_duration_seconds`` (histogram) →
  ``atlas_component_ingest_fetch_duration_seconds{quantile}``;
* ``atlas_ingest_backlog`` → ``atlas_component_ingest_backlog``;
* ``atlas_dlq_size`` → ``atlas_component_dlq_size``;
* ``atlas_circuit_state{host}`` (a number, or an Enum/StateSet) →
  ``atlas_component_circuit_state{host}`` (0 closed, 1 half-open, 2 open, as atlas-core
  exports it) and
  ``atlas_component_circuits_open``.

Rates and quantiles cover the interval between the two scrapes, like PromQL's
``rate`` and ``histogram_quantile(rate(...))``; a counter that went down was reset
and counts from zero. With no previous scrape, or no requests in the interval, the
rate-based figures are absent ("no data"), never 0 by default. Every derived series
carries ``component``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from atlas.monitoring.samples import Labels, Sample, sample
from atlas.monitoring.scrape import Family, Scrape

QUANTILES = (0.5, 0.9, 0.99)
STATUS_LABELS = ("status", "code", "status_code")
FAILED_RESULTS = frozenset({"error", "errors", "failed", "failure", "fail"})
# The encoding of atlas-core's atlas_circuit_state: ordered by how bad it is.
CIRCUIT_STATES = {"closed": 0.0, "half_open": 1.0, "half-open": 1.0, "open": 2.0}
CIRCUIT_OPEN = CIRCUIT_STATES["open"]


def _counter_values(f: Family | None) -> dict[Labels, float]:
    if f is None:
        return {}
    return {s.labels: s.value for s in f.samples if s.name.endswith("_total")}


def _increase(cur: dict[Labels, float], prev: dict[Labels, float]) -> dict[Labels, float]:
    """Per-series increase; a reset (value went down) counts from zero."""
    out = {}
    for labels, value in cur.items():
        before = prev.get(labels, 0.0)
        out[labels] = value - before if value >= before else value
    return out


def _find(s: Scrape | None, suffix: str, kind: str) -> Family | None:
    if s is None:
        return None
    return next((f for f in s.families if f.type == kind and f.name.endswith(suffix)), None)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile over (upper bound, cumulative count) pairs."""
    b = sorted(buckets)
    if len(b) < 2 or not math.isinf(b[-1][0]):
        return math.nan
    # cumulative counts must not decrease (a scrape taken mid-update may do so)
    counts = []
    top = 0.0
    for _, c in b:
        top = max(top, c)
        counts.append(top)
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    i = next(k for k, c in enumerate(counts) if c >= rank)
    if i == len(b) - 1:
        return b[-2][0]
    if i == 0 and b[0][0] <= 0:
        return b[0][0]
    start = 0.0 if i == 0 else b[i - 1][0]
    below = 0.0 if i == 0 else counts[i - 1]
    in_bucket = counts[i] - below
    if in_bucket <= 0:
        return b[i][0]
    return start + (b[i][0] - start) * ((rank - below) / in_bucket)


def _bucket_increase(cur: Family, prev: Family | None) -> list[tuple[float, float]]:
    """Increase per ``le`` over the interval, summed over the other labels."""

    def per_le(f: Family | None) -> dict[Labels, float]:
        if f is None:
            return {}
        return {s.labels: s.value for s in f.samples if s.name.endswith("_bucket")}

    inc = _increase(per_le(cur), per_le(prev))
    by_le: dict[float, float] = {}
    for labels, value in inc.items():
        le = dict(labels).get("le")
        if le is None:
            continue
        bound = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
        by_le[bound] = by_le.get(bound, 0.0) + value
    return sorted(by_le.items())


def _quantiles(name: str, component: str, cur: Family | None, prev: Family | None) -> list[Sample]:
    if cur is None or prev is None:
        return []
    buckets = _bucket_increase(cur, prev)
    out = []
    for q in QUANTILES:
        v = histogram_quantile(q, buckets)
        if not math.isnan(v):
            out.append(sample(name, v, component=component, quantile=f"{q:g}"))
    return out


def _gauge_sum(s: Scrape, name: str) -> float | None:
    f = s.family(name)
    if f is None or not f.samples:
        return None
    return sum(x.value for x in f.samples if x.name == name)


def _circuits(component: str, f: Family | None) -> list[Sample]:
    if f is None:
        return []
    states: dict[str, float] = {}
    for s in f.samples:
        labels = dict(s.labels)
        host = labels.get("host", "")
        if f.name in labels:  # an Enum / StateSet: one series per state, 1 for the current
            if s.value == 1:
                state = labels[f.name].lower()
                states[host] = CIRCUIT_STATES.get(state, math.nan)
        elif s.name == f.name:
            states[host] = s.value
    out = [sample("atlas_component_circuit_state", v, component=component, host=h)
           for h, v in sorted(states.items())]  # fmt: skip
    opened = sum(1 for v in states.values() if v == CIRCUIT_OPEN)
    out.append(sample("atlas_component_circuits_open", opened, component=component))
    return out


def derive(cur: Scrape, prev: Scrape | None) -> list[Sample]:
    """Derived series of one component from its current and previous scrape."""
    if not cur.ok:
        return []
    c = cur.component
    out: list[Sample] = []
    usable_prev = prev if prev is not None and prev.ok and cur.at > prev.at else None
    dt = cur.at - usable_prev.at if usable_prev is not None else 0.0

    requests = _find(cur, "http_requests", "counter")
    if requests is not None and usable_prev is not None:
        before = _find(usable_prev, "http_requests", "counter")
        inc = _increase(_counter_values(requests), _counter_values(before))
        total = sum(inc.values())
        errors = sum(v for labels, v in inc.items() if _is_5xx(labels))
        out.append(sample("atlas_component_http_requests_per_second", total / dt, component=c))
        out.append(sample("atlas_component_http_errors_per_second", errors / dt, component=c))
        if total > 0:
            out.append(sample("atlas_component_http_error_ratio", errors / total, component=c))
    out += _quantiles(
        "atlas_component_http_request_duration_seconds",
        c,
        _find(cur, "http_request_duration_seconds", "histogram"),
        _find(usable_prev, "http_request_duration_seconds", "histogram"),
    )

    items = cur.family("atlas_ingest_items")
    if items is not None and usable_prev is not None:
        inc = _increase(
            _counter_values(items), _counter_values(usable_prev.family("atlas_ingest_items"))
        )
        total = sum(inc.values())
        failed = sum(
            v for labels, v in inc.items() if dict(labels).get("result", "") in FAILED_RESULTS
        )
        out.append(sample("atlas_component_ingest_items_per_second", total / dt, component=c))
        if total > 0:
            out.append(
                sample(
                    "atlas_component_ingest_success_ratio", (total - failed) / total, component=c
                )
            )
    out += _quantiles(
        "atlas_component_ingest_fetch_duration_seconds",
        c,
        cur.family("atlas_ingest_fetch_duration_seconds"),
        usable_prev.family("atlas_ingest_fetch_duration_seconds") if usable_prev else None,
    )
    for source, target in (
        ("atlas_ingest_backlog", "atlas_component_ingest_backlog"),
        ("atlas_dlq_size", "atlas_component_dlq_size"),
    ):
        value = _gauge_sum(cur, source)
        if value is not None:
            out.append(sample(target, value, component=c))
    out += _circuits(c, cur.family("atlas_circuit_state"))
    return out


def _is_5xx(labels: Labels) -> bool:
    m = dict(labels)
    status = next((m[k] for k in STATUS_LABELS if k in m), "")
    return status.startswith("5") or status.lower() == "5xx"
