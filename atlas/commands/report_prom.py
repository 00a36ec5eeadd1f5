"""``atlas report --prometheus URL``: the same figures from a Prometheus that scrapes
Atlas, each an instant query over the window (``increase``/``*_over_time``) at its end,
plus what only metrics hold (per-fetch success ratio, fetch and API latency)."""

from __future__ import annotations

import math
import re
from typing import Any

from atlas.errors import AtlasError

FAILED = 'status=~"failed|cancelled"'


class PrometheusError(AtlasError):
    """The Prometheus given with --prometheus cannot answer."""


def shown(url: str) -> str:
    """``url`` as it may be printed: without a user or password in it."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url, flags=re.IGNORECASE)


def _query(client: Any, url: str, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
    import httpx

    where = f"--prometheus {shown(url)}"
    try:
        resp = client.get(f"{url}/api/v1/query", params={"query": expr, "time": at})
    except httpx.HTTPError as exc:
        detail = str(exc).replace(url, shown(url))
        raise PrometheusError(f"{where}: cannot reach it ({type(exc).__name__}: {detail})") from exc
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "status" not in doc:
        raise PrometheusError(
            f"{where}: expected the Prometheus HTTP API (JSON from /api/v1/query), got HTTP "
            f"{resp.status_code} {resp.headers.get('content-type', '')}".rstrip()
        )
    if doc.get("status") != "success":
        raise PrometheusError(f"{where}: {doc.get('error', resp.status_code)} in {expr}")
    out = []
    for r in doc["data"]["result"]:
        value = float(r["value"][1])
        if not math.isnan(value):  # NaN: no data
            out.append((r["metric"], value))
    return out


def _scalar(rows: list[tuple[dict[str, str], float]]) -> float | None:
    return rows[0][1] if rows else None


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


def report(url: str, since: float, until: float) -> dict[str, Any]:
    import httpx

    url = url.rstrip("/")
    w = f"{max(1, round(until - since))}s"
    with httpx.Client(timeout=30) as client:

        def q(expr: str) -> list[tuple[dict[str, str], float]]:
            return _query(client, url, expr, until)

        items = _scalar(q(f"sum(increase(atlas_ingest_items_total[{w}]))")) or 0.0
        by_source = q(f"sum by (source) (increase(atlas_ingest_items_total[{w}]))")
        failing = q(f"max by (source) (max_over_time(atlas_ingest_source_errors[{w}])) > 0")
        fetches = f"sum(increase(atlas_ingest_fetches_total[{w}]))"
        failed = f"sum(increase(atlas_ingest_fetches_total{{{FAILED}}}[{w}]))"
        success = _scalar(q(f"1 - ({failed} or 0 * {fetches}) / {fetches}"))
        p95 = _scalar(
            q(
                "histogram_quantile(0.95, sum by (le) "
                f"(increase(atlas_ingest_fetch_duration_seconds_bucket[{w}])))"
            )
        )
        results = q(f"sum by (result) (increase(atlas_reconcile_total[{w}]))")
        rollbacks = _scalar(q(f"sum(increase(atlas_rollbacks_total[{w}]))")) or 0.0
        drift = _scalar(q(f"sum(increase(atlas_live_drift_total[{w}]))")) or 0.0
        api = _api(q, w)
        firing = q(
            "sum by (alertname) (count_over_time((max by (alertname) "
            f'(ALERTS{{alertstate="firing"}}))[{w}:1m])) * 60'
        )
    hours = max(until - since, 1.0) / 3600
    sources: list[dict[str, Any]] = [
        {"source": m.get("source", ""), "items": round(v)}
        for m, v in sorted(by_source, key=lambda r: (-r[1], r[0].get("source", "")))
    ]
    return {
        "from": f"prometheus {shown(url)}",
        "ingestion": {
            "items": round(items),
            "items_per_hour": round(items / hours, 2),
            "success_ratio": _round(success),
            "fetch_p95_seconds": _round(p95),
            "top_sources": sources[:10],
            "failing_sources": [
                {"source": m.get("source", ""), "items": 0, "consecutive_errors": round(v)}
                for m, v in sorted(failing, key=lambda r: -r[1])
            ],
        },
        "reconciler": {
            "cycles": round(sum(v for _, v in results)),
            "outcomes": {m.get("result", ""): round(v) for m, v in sorted(results, key=str)},
            "rollbacks": round(rollbacks),
            "drift_events": round(drift),
        },
        "api": api,
        "alerts": {
            "fired": len(firing),
            "by_rule": [
                {"rule": m.get("alertname", ""), "fired": 1, "firing_seconds": round(v)}
                for m, v in sorted(firing, key=lambda r: r[0].get("alertname", ""))
            ],
        },
        "missing": [],
    }


def _api(q: Any, w: str) -> dict[str, Any]:
    total = f"sum(increase(atlas_http_requests_total[{w}]))"
    errors = f'sum(increase(atlas_http_requests_total{{status=~"5.."}}[{w}]))'
    out: dict[str, Any] = {
        "requests": round(_scalar(q(total)) or 0.0),
        "error_ratio": _round(_scalar(q(f"({errors} or 0 * {total}) / {total}"))),
    }
    for quantile in (0.5, 0.95, 0.99):
        out[f"latency_p{round(quantile * 100)}_seconds"] = _round(
            _scalar(
                q(
                    f"histogram_quantile({quantile}, sum by (le) "
                    f"(increase(atlas_http_request_duration_seconds_bucket[{w}])))"
                )
            )
        )
    return out
