"""Scraping a component's /metrics (a real HTTP server) and what the agent derives
from two scrapes: request and error rates, latency quantiles, ingestion throughput
and success, backlog, DLQ size and circuit states."""

from __future__ import annotations

import math

import pytest

from atlas.monitoring.component import Component
from atlas.monitoring.derive import derive, histogram_quantile
from atlas.monitoring.http import HttpxHttp
from atlas.monitoring.scrape import Scrape, exposed, parse_metrics, scrape
from seams.testing import FakeClock
from tests.support.monitoring import TestServer, metrics_text


def comp(url: str) -> Component:
    return Component("core", "core", ("atlas-core.service",), None, None, url + "/metrics", 1.0)


def values(samples: list, name: str) -> dict[tuple[tuple[str, str], ...], float]:  # type: ignore[type-arg]
    return {s.labels: s.value for s in samples if s.name == name}


def one(samples: list, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    hits = [
        s.value
        for s in samples
        if s.name == name and all(s.label_map.get(k) == v for k, v in labels.items())
    ]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


def test_scrape_then_derive_from_a_real_endpoint(server: TestServer) -> None:
    clock = FakeClock()
    http = HttpxHttp()
    server.state.metrics = metrics_text(
        100, 0, {"0.1": 50, "0.5": 90, "1": 100, "+Inf": 100}, {"new": 10, "error": 0}
    )
    first = scrape(comp(server.url), http, clock)
    assert first is not None and first.ok and first.sample_count > 10
    d = derive(first, None)
    assert not values(d, "atlas_component_http_requests_per_second"), "no rate from one scrape"
    assert one(d, "atlas_component_dlq_size", component="core") == 7
    assert one(d, "atlas_component_ingest_backlog", component="core") == 4

    clock.advance(10)
    server.state.metrics = metrics_text(
        300, 50, {"0.1": 150, "0.5": 190, "1": 200, "+Inf": 300}, {"new": 40, "error": 10}, dlq=9
    )
    second = scrape(comp(server.url), http, clock)
    assert second is not None and second.ok
    d = derive(second, first)
    assert one(d, "atlas_component_http_requests_per_second", component="core") == pytest.approx(
        25.0
    )
    assert one(d, "atlas_component_http_errors_per_second", component="core") == pytest.approx(5.0)
    assert one(d, "atlas_component_http_error_ratio", component="core") == pytest.approx(0.2)
    # 200 new observations in the interval: 100 ≤0.1, 100 in (0.1, 0.5], 0 in (0.5, 1], 100 above 1
    assert one(d, "atlas_component_http_request_duration_seconds", quantile="0.5") == pytest.approx(
        0.1
    )
    assert one(d, "atlas_component_http_request_duration_seconds", quantile="0.9") == pytest.approx(
        1.0
    )
    assert one(d, "atlas_component_ingest_items_per_second", component="core") == pytest.approx(4.0)
    assert one(d, "atlas_component_ingest_success_ratio", component="core") == pytest.approx(0.75)
    assert one(d, "atlas_component_dlq_size") == 9
    assert one(d, "atlas_component_circuit_state", host="b.example") == 2
    assert one(d, "atlas_component_circuit_state", host="a.example") == 0
    assert one(d, "atlas_component_circuits_open") == 1
    own = exposed(second)
    assert one(own, "atlas_ingest_source_errors", source="hn", component="core") == 3


def test_a_counter_reset_counts_from_zero() -> None:
    def s(at: float, n: int) -> Scrape:
        text = (
            "# TYPE atlas_http_requests_total counter\n"
            f'atlas_http_requests_total{{status="200"}} {n}\n'
        )
        return Scrape("api", True, at, families=tuple(parse_metrics(text)))

    d = derive(s(20, 30), s(10, 1000))  # restarted: 30 requests since
    assert one(d, "atlas_component_http_requests_per_second") == pytest.approx(3.0)


def test_no_requests_in_the_interval_means_no_latency_data() -> None:
    text = (
        "# TYPE x_http_request_duration_seconds histogram\n"
        'x_http_request_duration_seconds_bucket{le="1"} 5\n'
        'x_http_request_duration_seconds_bucket{le="+Inf"} 5\n'
        "x_http_request_duration_seconds_count 5\nx_http_request_duration_seconds_sum 1\n"
    )
    a = Scrape("api", True, 10, families=tuple(parse_metrics(text)))
    b = Scrape("api", True, 20, families=tuple(parse_metrics(text)))
    assert not values(derive(b, a), "atlas_component_http_request_duration_seconds")


def test_circuit_state_as_an_enum() -> None:
    text = (
        "# TYPE atlas_circuit_state gauge\n"
        'atlas_circuit_state{host="a",atlas_circuit_state="closed"} 0\n'
        'atlas_circuit_state{host="a",atlas_circuit_state="half_open"} 1\n'
        'atlas_circuit_state{host="a",atlas_circuit_state="open"} 0\n'
    )
    d = derive(Scrape("core", True, 1, families=tuple(parse_metrics(text))), None)
    assert one(d, "atlas_component_circuit_state", host="a") == 1
    assert one(d, "atlas_component_circuits_open") == 0


def test_histogram_quantile_matches_promql() -> None:
    b = [(0.1, 10.0), (0.5, 20.0), (1.0, 20.0), (math.inf, 20.0)]
    assert histogram_quantile(0.5, b) == pytest.approx(0.1)
    assert histogram_quantile(0.75, b) == pytest.approx(0.3)
    assert histogram_quantile(0.25, b) == pytest.approx(0.05)
    assert histogram_quantile(0.99, [(1.0, 1.0), (math.inf, 10.0)]) == 1.0, (
        "top bucket: its lower bound"
    )
    assert math.isnan(histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))
    assert math.isnan(histogram_quantile(0.5, [(1.0, 3.0)])), "no +Inf bucket"


def test_unparsable_and_failing_scrapes_are_results_not_errors(server: TestServer) -> None:
    clock = FakeClock()
    server.state.metrics = "this is { not metrics\n"
    got = scrape(comp(server.url), HttpxHttp(), clock)
    assert (
        got is not None and not got.ok and got.error and got.error.startswith("unparsable metrics")
    )
    assert derive(got, None) == []
    c = Component("core", "core", ("u",), None, None, server.url + "/nothing-here", 1.0)
    got = scrape(c, HttpxHttp(), clock)
    assert got is not None and not got.ok and got.error == "HTTP 404"


def test_the_family_cache_parses_like_the_whole_page() -> None:
    import random

    from atlas.monitoring.scrape import FamilyCache, split_families

    rng = random.Random(5)

    def page(tick: int) -> str:
        n = rng.randint(0, 50)
        text = metrics_text(
            n,
            rng.randint(0, 3),
            {"0.1": n, "1": n + 1, "+Inf": n + 2},
            {"new": tick, "error": rng.choice([0, 0, 1])},
            dlq=rng.randint(0, 2),
        )
        extra = rng.choice(
            [
                "",
                "untyped_metric 3\n",
                f'# TYPE g gauge\ng{{x="a b}} c"}} {tick}\ng 1 1700000000000\n',
                f"# HELP h Help changes {tick % 2}.\n# TYPE h gauge\nh +Inf\n",
                f'# TYPE new_{tick % 3} counter\nnew_{tick % 3}_total{{k="v"}} {tick}\n',
            ]
        )
        return text + extra

    cache = FamilyCache()
    for tick in range(60):
        text = page(tick)
        assert cache.parse(text) == parse_metrics(text), text
    first = metrics_text(1, 0, {"0.1": 1, "+Inf": 1}, {"new": 1, "error": 0})
    assert len(split_families(first)) == 7
    assert "".join(split_families(first)) == first


def test_known_series_with_new_values_are_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import atlas.monitoring.scrape as scrape_module
    from atlas.monitoring.scrape import FamilyCache

    cache = FamilyCache()
    before = metrics_text(10, 1, {"0.1": 5, "+Inf": 9}, {"new": 3, "error": 0})
    cache.parse(before)
    after = metrics_text(20, 2, {"0.1": 9, "+Inf": 19}, {"new": 7, "error": 1}, dlq=3)

    def refuse(text: str) -> None:
        raise AssertionError(f"parsed again:\n{text}")

    monkeypatch.setattr(scrape_module, "parse_metrics", refuse)
    got = cache.parse(after)
    monkeypatch.undo()
    assert got == parse_metrics(after)
    added = after + '# TYPE atlas_dlq_size gauge\natlas_dlq_size{queue="x"} 1\n'
    monkeypatch.setattr(scrape_module, "parse_metrics", refuse)
    with pytest.raises(AssertionError, match="parsed again"):
        cache.parse(added)
