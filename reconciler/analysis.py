"""Rollout analysis: the new replicas' own request metrics judged against the stable ones'.

Pure: ``parse`` reads an API replica's ``/metrics`` text into a ``Sample`` (requests,
server errors and the latency histogram, summed over routes; scrapes of ``/metrics``
itself are left out), ``Window`` is what happened between two samples, and ``judge``
holds one window of the new replicas against the stable replicas' window of the same
time under the Deployment's ``metrics`` (``errorRatio``, ``p99``; ``max`` is absolute,
``maxOverStable`` adds to the stable value, ``maxRatioToStable`` multiplies it; a p99
bound is rounded up to a bucket boundary, the resolution a histogram has). A
window with no stable traffic is judged by the absolute bounds and by the relative
ones against zero errors (a p99 relative to nothing is not judged). ``Tally`` counts
the measurements and says when the analysis has failed (more failures than
``failureLimit``) or passed (``count`` measurements).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reconciler.model import Analysis, AnalysisMetric

REQUESTS = "atlas_http_requests"
LATENCY = "atlas_http_request_duration_seconds"
IGNORED_ROUTES = frozenset({"/metrics"})


class MetricsUnreadable(ValueError):
    """A replica's /metrics text is not Prometheus exposition format."""


@dataclass(frozen=True)
class Sample:
    requests: float = 0.0
    errors: float = 0.0  # status 5xx
    buckets: tuple[tuple[float, float], ...] = ()  # (le, cumulative count), le ascending

    def __add__(self, other: Sample) -> Sample:
        return Sample(
            self.requests + other.requests,
            self.errors + other.errors,
            _merge(self.buckets, other.buckets, 1.0),
        )


def _merge(
    a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]], sign: float
) -> tuple[tuple[float, float], ...]:
    les = sorted({le for le, _ in a} | {le for le, _ in b})
    da, db = dict(a), dict(b)
    return tuple((le, da.get(le, 0.0) + sign * db.get(le, 0.0)) for le in les)


@dataclass(frozen=True)
class Window:
    """What a set of replicas served between two samples."""

    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]

    @classmethod
    def between(cls, before: Sample, after: Sample) -> Window:
        return cls(
            max(0.0, after.requests - before.requests),
            max(0.0, after.errors - before.errors),
            _merge(after.buckets, before.buckets, -1.0),
        )

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p99(self) -> float | None:
        """The upper bound of the bucket holding the 99th percentile (seconds)."""
        total = self.buckets[-1][1] if self.buckets else 0.0
        if total <= 0:
            return None
        for le, count in self.buckets:
            if count >= 0.99 * total:
                return le
        return math.inf


def parse(text: str) -> Sample:
    """The API's request metrics in one replica's ``/metrics`` text."""
    from prometheus_client.parser import text_string_to_metric_families

    requests = errors = 0.0
    buckets: dict[float, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.labels.get("route") in IGNORED_ROUTES:
                    continue
                if s.name == f"{REQUESTS}_total":
                    requests += s.value
                    errors += s.value if s.labels.get("status", "").startswith("5") else 0.0
                elif s.name == f"{LATENCY}_bucket":
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
    except (ValueError, KeyError, TypeError) as exc:
        raise MetricsUnreadable(f"not Prometheus text: {exc}") from exc
    return Sample(requests, errors, tuple(sorted(buckets.items())))


def total(samples: Iterable[Sample]) -> Sample:
    out = Sample()
    for s in samples:
        out = out + s
    return out


@dataclass(frozen=True)
class Measurement:
    ok: bool
    values: dict[str, float | None]  # new.<metric>, stable.<metric>
    failures: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in self.values.items())
        return shown if self.ok else f"{'; '.join(self.failures)} ({shown})"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _bound(m: AnalysisMetric, stable: float | None, les: Sequence[float]) -> float | None:
    """The bound ``m`` sets; for p99, rounded up to a bucket's upper bound (a histogram
    knows a quantile only to its bucket: without this, 1 ms → 2.5 ms fails "2x")."""
    bounds = []
    if m.max is not None:
        bounds.append(m.max)
    if m.max_over_stable is not None:
        bounds.append((stable or 0.0) + m.max_over_stable)
    if m.max_ratio_to_stable is not None and stable is not None:
        bounds.append(stable * m.max_ratio_to_stable)
    if not bounds:
        return None
    bound = min(bounds)
    if m.name == "p99":
        bound = next((le for le in les if le >= bound), bound)
    return bound


def judge(metrics: Sequence[AnalysisMetric], new: Window, stable: Window | None) -> Measurement:
    """One measurement: each metric of ``new`` within its bound from ``stable``."""
    values: dict[str, float | None] = {}
    failures = []
    for m in metrics:
        mine = new.error_ratio if m.name == "errorRatio" else new.p99
        theirs = None
        if stable is not None:
            theirs = stable.error_ratio if m.name == "errorRatio" else stable.p99
        values[f"new.{m.name}"], values[f"stable.{m.name}"] = mine, theirs
        bound = _bound(m, theirs, [le for le, _ in new.buckets])
        if mine is not None and bound is not None and mine > bound:
            failures.append(f"{m.name} {_fmt(mine)} above {_fmt(bound)}")
    return Measurement(not failures, values, tuple(failures))


@dataclass
class Tally:
    """The measurements of one analysis so far, and what they add up to."""

    analysis: Analysis
    measurements: list[Measurement] = field(default_factory=list)

    def add(self, m: Measurement) -> None:
        self.measurements.append(m)

    @property
    def failures(self) -> int:
        return sum(1 for m in self.measurements if not m.ok)

    @property
    def failed(self) -> bool:
        return self.failures > self.analysis.failure_limit

    @property
    def passed(self) -> bool:
        return not self.failed and len(self.measurements) >= self.analysis.count

    def reason(self) -> str:
        bad = [m.summary for m in self.measurements if not m.ok]
        return (
            f"analysis failed {self.failures} of {len(self.measurements)} measurement(s) "
            f"(failureLimit {self.analysis.failure_limit}): {bad[-1] if bad else ''}"
        )
